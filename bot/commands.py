"""Platform-neutral commands: /profile ..., /forget, /answer, /help.

Adapters map these to slash commands or bot commands and deliver them as text; the
core parses them, enforces moderator rights and answers in plain text.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass
from typing import Any

from bot.errors import CabotError, CommandError, PermissionDeniedError
from bot.messages import IncomingMessage, Scope
from bot.resolution import ProfileResolver, Resolved
from bot.store import Actor, Level, Store
from profiles import ComposedPlan, Library, compose
from profiles.library import suggest
from profiles.models import NAME_PATTERN, Sampling

SAMPLING_DEFAULTS: dict[str, Any] = {
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
}

PROFILE_SUBCOMMANDS = (
    "show", "explain", "list", "layers", "use", "set", "reset", "define", "audit",
)
COMMANDS = ("profile", "forget", "answer", "help")

HELP = """\
cabot commands:
/profile show — the profile in effect here and where each layer comes from
/profile explain [profile] — exactly what the model is told, each part with its layer
/profile list — the profiles you can use
/profile layers — the layers you can stack
/profile use <profile> [--channel|--community] — switch this place's profile (moderators)
/profile set <layer> [<layer> ...] [--channel|--community] — an explicit layer stack (moderators)
/profile reset [--channel|--community] — go back to the inherited profile (moderators)
/profile define <name> <layer> [<layer> ...] — create a community profile (community moderators)
/profile audit — the latest profile changes in this community
/answer always|addressed — answer every message here, or only when addressed (moderators)
/forget — clear this channel's conversation memory"""


@dataclass(frozen=True)
class CommandReply:
    """A command's answer; ``ephemeral`` when it concerns only the person who asked."""

    text: str
    ephemeral: bool = False


def parse_command(text: str) -> tuple[str, list[str]] | None:
    """``("profile", ["use", "kids"])`` for ``/profile use kids``; None if not a command.

    A ``@botname`` suffix on the command (Telegram) is dropped.
    """
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return None
    try:
        words = shlex.split(stripped[1:])
    except ValueError:
        words = stripped[1:].split()
    if not words:
        return None
    name = words[0].split("@", 1)[0].lower()
    if name not in COMMANDS:
        return None
    return name, words[1:]


def _mask(word: str) -> str:
    return word[0] + "*" * (len(word) - 1) if len(word) > 1 else "*"


def describe_stack(resolved: Resolved) -> str:
    """The ``/profile show`` text."""
    binding = resolved.binding
    what = f"Profile '{resolved.profile}'" if resolved.profile else "A custom layer stack"
    lines = [f"{what} — {resolved.source()}"]
    if binding is not None:
        lines[0] += f" (by {binding.set_by})"
    for layer in resolved.stack:
        origin = resolved.library.layer_origin(layer.name)
        lines.append(f"  {layer.name} ({origin}) — {layer.description}")
    lines.extend(f"Note: {warning}" for warning in resolved.warnings)
    return "\n".join(lines)


def explain_plan(plan: ComposedPlan, header: str, mask_banned: bool = True) -> str:
    """The ``/profile explain`` text: prompt, settings and rules, each with its layer."""
    lines = [header, f"Layers (bottom first): {', '.join(plan.layers)}", "", "System prompt:"]
    if plan.prompt:
        lines.extend(f"  [{part.layer}] {part.value}" for part in plan.prompt)
    else:
        lines.append("  (none)")
    lines += ["", "Sampling:"]
    for key in Sampling.model_fields:
        if key in plan.sampling:
            lines.append(f"  {key} = {plan.sampling[key].value}  ({plan.sampling[key].layer})")
        elif key in SAMPLING_DEFAULTS:
            lines.append(f"  {key} = {SAMPLING_DEFAULTS[key]}  (cabot default)")
        else:
            lines.append(f"  {key} = (cabot default)")
    lines += ["", "Rules:"]
    rules = []
    by_layer: dict[str, list[str]] = {}
    for sourced in plan.banned:
        by_layer.setdefault(sourced.layer, []).append(
            _mask(sourced.value) if mask_banned else sourced.value
        )
    for layer, words in by_layer.items():
        rules.append(f"  banned words ({len(words)}): {', '.join(words)}  ({layer})")
    rules += [
        f"  refuse /{s.value.pattern}/ with \"{s.value.message}\"  ({s.layer})" for s in plan.refuse
    ]
    rules += [
        f"  redact /{s.value.pattern}/ as \"{s.value.replacement}\"  ({s.layer})"
        for s in plan.redact
    ]
    if plan.max_reply_chars is not None:
        rules.append(
            f"  max reply length = {plan.max_reply_chars.value} characters  "
            f"({plan.max_reply_chars.layer})"
        )
    rules += [f"  stop at {s.value!r}  ({s.layer})" for s in plan.stop]
    if plan.grammar is not None:
        rules.append(f"  output grammar: {plan.grammar.value}  ({plan.grammar.layer})")
    lines.extend(rules or ["  (none)"])
    return "\n".join(lines)


class CommandHandler:
    """Runs commands against the store and the profile resolver."""

    def __init__(self, store: Store, resolver: ProfileResolver) -> None:
        self._store = store
        self._resolver = resolver

    async def run(self, message: IncomingMessage, name: str, args: list[str]) -> CommandReply:
        """Run one command; user mistakes become a reply, never an exception."""
        try:
            if name == "help":
                return CommandReply(HELP, ephemeral=True)
            if name == "forget":
                return await self._forget(message)
            if name == "answer":
                return await self._answer(message, args)
            return await self._profile(message, args)
        except CabotError as error:
            return CommandReply(str(error), ephemeral=True)

    async def _profile(self, message: IncomingMessage, args: list[str]) -> CommandReply:
        sub = args[0].lower() if args else "show"
        rest = args[1:]
        if sub not in PROFILE_SUBCOMMANDS:
            hint = suggest(sub, PROFILE_SUBCOMMANDS)
            raise CommandError(
                f"Unknown /profile subcommand {sub!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else ".")
                + f" Try one of: {', '.join(PROFILE_SUBCOMMANDS)}."
            )
        scope = message.scope
        if sub == "show":
            return CommandReply(describe_stack(await self._resolver.resolve(scope)), True)
        if sub == "explain":
            return CommandReply(await self._explain(scope, rest), True)
        if sub == "list":
            library = await self._resolver.library_for(scope.platform, scope.community)
            return CommandReply(_list_profiles(library), True)
        if sub == "layers":
            library = await self._resolver.library_for(scope.platform, scope.community)
            return CommandReply(_list_layers(library), True)
        if sub == "audit":
            return CommandReply(await self._audit(scope), True)
        level, rest = _take_level(message, rest)
        if sub == "define":
            level = "community"  # a community profile is a community-wide change
        _require_moderator(message, level)
        actor = Actor(id=message.author_id, name=message.author_name)
        library = await self._resolver.library_for(scope.platform, scope.community)
        where = _where(level)
        if sub == "use":
            if len(rest) != 1:
                raise CommandError("Usage: /profile use <profile>; see /profile list.")
            profile = library.profile(rest[0])
            compose(library.stack(profile.layers))
            await self._store.alignment.bind(scope, level, actor, profile=profile.name)
            return CommandReply(f"{where} now uses profile '{profile.name}' "
                                f"({', '.join(profile.layers)}).")
        if sub == "set":
            if not rest:
                raise CommandError(
                    "Usage: /profile set <layer> [<layer> ...]; see /profile layers."
                )
            names = tuple(rest)
            compose(library.stack(names))
            await self._store.alignment.bind(scope, level, actor, layers=names)
            return CommandReply(f"{where} now uses the layers {', '.join(names)}.")
        if sub == "reset":
            old = await self._store.alignment.bind(scope, level, actor)
            if old is None:
                return CommandReply(f"{where} had no profile of its own; nothing changed.", True)
            resolved = await self._resolver.resolve(scope)
            return CommandReply(
                f"{where} no longer sets {old.describe()}; it now follows "
                f"{resolved.source()}: '{resolved.profile or ', '.join(resolved.plan.layers)}'."
            )
        return await self._define(message, rest, library, actor)

    async def _define(
        self, message: IncomingMessage, rest: list[str], library: Library, actor: Actor
    ) -> CommandReply:
        if len(rest) < 2:
            raise CommandError("Usage: /profile define <name> <layer> [<layer> ...].")
        name, layers = rest[0].lower(), tuple(rest[1:])
        if not re.match(NAME_PATTERN, name):
            raise CommandError(
                f"{name!r} is not a valid profile name: use 1-40 lowercase letters, digits, "
                "'-' or '_'."
            )
        compose(library.stack(layers))
        scope = message.scope
        await self._store.alignment.save_custom_profile(
            scope.platform, scope.community, name, layers, f"Defined by {actor.name}", actor
        )
        return CommandReply(
            f"Profile '{name}' ({', '.join(layers)}) is now available in this community; "
            f"switch to it with /profile use {name}."
        )

    async def _explain(self, scope: Scope, rest: list[str]) -> str:
        if rest:
            library = await self._resolver.library_for(scope.platform, scope.community)
            profile = library.profile(rest[0])
            plan = compose(library.stack(profile.layers))
            return explain_plan(plan, f"Profile '{profile.name}': {profile.description}")
        resolved = await self._resolver.resolve(scope)
        name = f"Profile '{resolved.profile}'" if resolved.profile else "Custom layer stack"
        return explain_plan(resolved.plan, f"{name} — {resolved.source()}")

    async def _audit(self, scope: Scope) -> str:
        entries = await self._store.alignment.audit_log(scope.platform, scope.community, limit=15)
        if not entries:
            return "No profile changes recorded in this community yet."
        lines = ["Latest changes (newest first):"]
        for entry in entries:
            when = dt.datetime.fromtimestamp(entry.at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            place = entry.scope.channel or "community"
            lines.append(
                f"  {when} {entry.actor_name}: {entry.action} in {place}: "
                f"{entry.old or '(inherited)'} → {entry.new or '(inherited)'}"
            )
        return "\n".join(lines)

    async def _forget(self, message: IncomingMessage) -> CommandReply:
        removed = await self._store.conversations.clear_history(message.scope)
        return CommandReply(f"Forgot this channel's conversation ({removed} messages).")

    async def _answer(self, message: IncomingMessage, args: list[str]) -> CommandReply:
        if len(args) != 1 or args[0].lower() not in ("always", "addressed"):
            raise CommandError("Usage: /answer always (every message) or /answer addressed "
                               "(only mentions, replies and commands).")
        _require_moderator(message, "channel")
        mode = args[0].lower()
        await self._store.conversations.set_reply_mode(
            message.scope, mode, Actor(id=message.author_id, name=message.author_name)
        )
        place = "thread" if message.scope.thread is not None else "channel"
        if mode == "always":
            return CommandReply(f"I'll answer every message in this {place}.")
        return CommandReply(f"I'll answer in this {place} only when mentioned or replied to.")


def _take_level(message: IncomingMessage, args: list[str]) -> tuple[Level, list[str]]:
    level: Level = "thread" if message.scope.thread is not None else "channel"
    rest = []
    for raw in args:
        # Phones turn "--" into an em or en dash: accept those as the flag prefix too.
        arg = "--" + raw[1:] if raw[:1] in ("\u2014", "\u2013") else raw
        flag = arg.lower().lstrip("-")
        if arg.startswith("--") or flag in ("community", "server", "group"):
            if flag in ("community", "server", "group"):
                level = "community"
            elif flag == "channel":
                level = "channel"
            elif flag == "thread" and message.scope.thread is not None:
                level = "thread"
            else:
                raise CommandError(
                    f"Unknown option {arg!r}; use --channel or --community."
                )
        else:
            rest.append(arg)
    return level, rest


def _where(level: Level) -> str:
    return {"thread": "This thread", "channel": "This channel",
            "community": "The whole community"}[level]


def _require_moderator(message: IncomingMessage, level: Level) -> None:
    if level == "community":
        if not message.moderates_community:
            raise PermissionDeniedError(
                "Only community moderators (who can manage the server or group) can change "
                "the community's profile. Ask one of them."
            )
    elif not (message.moderates_channel or message.moderates_community):
        raise PermissionDeniedError(
            "Only moderators (who can manage this channel) can change its profile. "
            "Ask one of them; anyone can use /profile show and /profile explain."
        )


def _list_profiles(library: Library) -> str:
    lines = ["Profiles:"]
    for name in sorted(library.profiles):
        profile = library.profiles[name]
        origin = library.profile_origin(name)
        suffix = "" if origin == "built-in" else f" [{origin}]"
        lines.append(f"  {name}{suffix} — {profile.description} ({', '.join(profile.layers)})")
    return "\n".join(lines)


def _list_layers(library: Library) -> str:
    lines = ["Layers:"]
    for name in sorted(library.layers):
        origin = library.layer_origin(name)
        suffix = "" if origin == "built-in" else f" [{origin}]"
        lines.append(f"  {name}{suffix} — {library.layers[name].description}")
    return "\n".join(lines)
