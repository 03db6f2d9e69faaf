"""The handlers of cabot's commands; :mod:`bot.commands.catalog` declares them."""

from __future__ import annotations

import re
import time

from bot.commands.context import CommandContext, CommandReply
from bot.commands.probing import switch_with_probes
from bot.commands.render import (
    describe_audit,
    describe_report,
    describe_stack,
    explain_plan,
    list_layers,
    list_profiles,
)
from bot.errors import BoundLayerError, CommandError
from bot.group_chat import GROUP_NOTE
from bot.messages import Command
from bot.store import Level
from profiles import Library, compose
from profiles.bounds import Bound, BoundConflict, bounded_stack, compose_bounded, find_conflict
from profiles.models import NAME_PATTERN

AUDIT_ENTRIES = 15


async def show_help(ctx: CommandContext, command: Command) -> CommandReply:
    """``/help``."""
    return CommandReply(ctx.help_text, ephemeral=True)


async def profile_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile show``."""
    message = ctx.message
    resolved = await ctx.resolver.resolve(message.scope, member=message.author_id)
    return CommandReply(describe_stack(resolved), True)


async def profile_explain(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile explain [profile]``."""
    scope = ctx.message.scope
    name = command.word("profile")
    if name is not None:
        library = await _library(ctx)
        profile = library.profile(name)
        bounds = await _check_bounded(ctx, library, profile.layers)
        plan = compose_bounded(library.stack(profile.layers), bounds)
        header = f"Profile '{profile.name}': {profile.description}"
        return CommandReply(group_note(ctx, explain_plan(
            plan, header, bounds=bounds, enforces=ctx.enforces, limits=ctx.limits)), True)
    resolved = await ctx.resolver.resolve(scope, member=ctx.message.author_id)
    what = f"Profile '{resolved.profile}'" if resolved.profile else "Custom layer stack"
    return CommandReply(group_note(ctx, explain_plan(
        resolved.plan, f"{what} — {resolved.source()}", bounds=resolved.bounds,
        enforces=ctx.enforces, limits=ctx.limits)), True)


def group_note(ctx: CommandContext, explained: str) -> str:
    """``explained``, plus what cabot adds to the system prompt in a group chat."""
    if ctx.message.is_direct:
        return explained
    return (f"{explained}\n\nIn a group chat like this one, cabot adds to the system prompt "
            f"(and puts each person's name before their messages):\n  {GROUP_NOTE}")


async def profile_why(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile why``: which rules acted on the latest reply here."""
    report = ctx.reports.latest(ctx.message.scope)
    return CommandReply(describe_report(report, time.time()), True)


async def profile_list(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile list``."""
    return CommandReply(list_profiles(await _library(ctx)), True)


async def profile_layers(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile layers``."""
    return CommandReply(list_layers(await _library(ctx)), True)


async def profile_audit(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile audit``."""
    scope = ctx.message.scope
    entries = await ctx.store.alignment.audit_log(
        scope.platform, scope.community, limit=AUDIT_ENTRIES
    )
    return CommandReply(describe_audit(entries), True)


async def profile_use(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile use <profile>``."""
    library = await _library(ctx)
    profile = library.profile(command.word("profile") or "")
    bounds = await _check_bounded(ctx, library, profile.layers)

    async def bind() -> None:
        await ctx.store.alignment.bind(ctx.message.scope, ctx.level, ctx.actor,
                                       profile=profile.name)

    # The stack's probes run first or after, as the community's setting says.
    return await switch_with_probes(
        ctx, library, profile.layers, bounds, profile, bind,
        f"{where(ctx.level)} now uses profile '{profile.name}' "
        f"({', '.join(profile.layers)}){_with_bounds(bounds, profile.layers)}.")


async def profile_set(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile set <layer> [<layer> ...]``."""
    names = command.words("layers")
    library = await _library(ctx)
    bounds = await _check_bounded(ctx, library, names)

    async def bind() -> None:
        await ctx.store.alignment.bind(ctx.message.scope, ctx.level, ctx.actor, layers=names)

    return await switch_with_probes(
        ctx, library, names, bounds, None, bind,
        f"{where(ctx.level)} now uses the layers {', '.join(names)}"
        f"{_with_bounds(bounds, names)}.")


async def profile_reset(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile reset``."""
    scope = ctx.message.scope
    old = await ctx.store.alignment.bind(scope, ctx.level, ctx.actor)
    if old is None:
        return CommandReply(f"{where(ctx.level)} had no profile of its own; nothing changed.",
                            True)
    resolved = await ctx.resolver.resolve(scope)
    return CommandReply(
        f"{where(ctx.level)} no longer sets {old.describe()}; it now follows "
        f"{resolved.source()}: '{resolved.profile or ', '.join(resolved.plan.layers)}'."
    )


async def profile_define(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile define <name> <layer> [<layer> ...]``."""
    name, layers = (command.word("name") or "").lower(), command.words("layers")
    if not re.match(NAME_PATTERN, name):
        raise CommandError(
            f"{name!r} is not a valid profile name: use 1-40 lowercase letters, digits, "
            "'-' or '_'."
        )
    await _check_bounded(ctx, await _library(ctx), layers)
    scope = ctx.message.scope
    await ctx.store.alignment.save_custom_profile(
        scope.platform, scope.community, name, layers, f"Defined by {ctx.actor.name}", ctx.actor
    )
    return CommandReply(
        f"Profile '{name}' ({', '.join(layers)}) is now available in this community; "
        f"switch to it with /profile use {name}."
    )


async def profile_lock(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile lock <layer> [<layer> ...]``: part of every stack in the community."""
    scope = ctx.message.scope
    library = await _library(ctx)
    layers = library.stack(dict.fromkeys(command.words("layers")))
    bounds, _ = await ctx.resolver.bounds_for(scope.platform, scope.community, library)
    floor = [layer.name for layer in layers if _bound(bounds, layer.name, "floor")]
    wanted: list[Bound] = list(bounds)
    for layer in layers:
        conflict = find_conflict([layer], wanted)
        if conflict is not None:
            raise BoundLayerError(describe_conflict(conflict))
        wanted.append(Bound(layer, "lock", ctx.actor.name))
    compose(bounded_stack((), wanted))  # the bounds alone must compose too
    names = tuple(layer.name for layer in layers if layer.name not in floor)
    locked = await ctx.store.alignment.lock(scope.platform, scope.community, names, ctx.actor)
    notes = []
    if locked:
        notes.append(
            f"Locked {', '.join(locked)} for the whole community: every stack here includes "
            f"{'it' if len(locked) == 1 else 'them'}, whatever a channel or thread selects, "
            "and no channel can drop its rules. Lift a lock with /profile unlock "
            f"{locked[0]}."
        )
    if set(names) - set(locked):
        notes.append(f"Already locked: {', '.join(n for n in names if n not in locked)}.")
    if floor:
        notes.append(f"Already part of every stack (the operator's floor): {', '.join(floor)}.")
    return CommandReply(" ".join(notes))


async def profile_unlock(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile unlock <layer> [<layer> ...]``."""
    scope = ctx.message.scope
    names = tuple(dict.fromkeys(command.words("layers")))
    floor = [name for name in names if _bound(ctx.resolver.floor, name, "floor")]
    if floor:
        raise BoundLayerError(
            f"{', '.join(floor)} {'is' if len(floor) == 1 else 'are'} the operator's floor: part "
            "of every stack, in every community; no moderator can remove "
            f"{'it' if len(floor) == 1 else 'them'}. Ask whoever runs this bot."
        )
    held = [lock.layer for lock in await ctx.store.alignment.locks(scope.platform,
                                                                   scope.community)]
    unknown = [name for name in names if name not in held]
    if unknown:
        raise CommandError(
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not locked here. "
            f"Locked in this community: {', '.join(held) if held else 'nothing'}."
        )
    unlocked = await ctx.store.alignment.unlock(scope.platform, scope.community, names,
                                                ctx.actor)
    return CommandReply(
        f"Unlocked {', '.join(unlocked)}: channels and threads of this community may now "
        "choose stacks without it."
    )


def describe_conflict(conflict: BoundConflict) -> str:
    """Why a selected layer cannot be used, naming the bound layer and who can lift it."""
    bound = conflict.bound
    name = bound.layer.name
    clash = f"Layer {conflict.layer!r} {conflict.reason} {name!r}, which "
    if bound.kind == "floor":
        return (clash + "the operator of this bot sets for every community; no moderator "
                f"can remove it. Choose a stack without {conflict.layer!r}.")
    return (clash + f"{bound.by} locked for this whole community. A community moderator can "
            f"lift the lock with /profile unlock {name}, or choose a stack without "
            f"{conflict.layer!r}.")


async def _check_bounded(
    ctx: CommandContext, library: Library, names: tuple[str, ...]
) -> tuple[Bound, ...]:
    """The bounds of this community, once ``names`` is known to compose inside them.

    Raises:
        BoundLayerError: a layer clashes with a floor or locked layer.
        ProfileError: the stack is unknown or does not compose.
    """
    scope = ctx.message.scope
    stack = library.stack(names)
    bounds, _ = await ctx.resolver.bounds_for(scope.platform, scope.community, library)
    conflict = find_conflict(stack, bounds)
    if conflict is not None:
        raise BoundLayerError(describe_conflict(conflict))
    compose_bounded(stack, bounds)
    return bounds


def _with_bounds(bounds: tuple[Bound, ...], names: tuple[str, ...]) -> str:
    """`` with the locked layer kids and the operator's floor no-pii``, for a reply."""
    locks = [b.layer.name for b in bounds if b.kind == "lock" and b.layer.name not in names]
    floor = [b.layer.name for b in bounds if b.kind == "floor" and b.layer.name not in names]
    parts = []
    if locks:
        parts.append(f"the community's locked {', '.join(locks)}")
    if floor:
        parts.append(f"the operator's floor {', '.join(floor)}")
    return f", always with {' and '.join(parts)}" if parts else ""


def _bound(bounds: tuple[Bound, ...], name: str, kind: str) -> bool:
    return any(b.layer.name == name and b.kind == kind for b in bounds)


async def forget(ctx: CommandContext, command: Command) -> CommandReply:
    """``/forget``."""
    summary = await ctx.store.summaries.summary(ctx.message.scope)
    removed = await ctx.store.conversations.clear_history(ctx.message.scope)
    folded = f" and the summary of {summary.turns} older ones" if summary else ""
    return CommandReply(f"Forgot this channel's conversation ({removed} messages{folded}).")


async def answer(ctx: CommandContext, command: Command) -> CommandReply:
    """``/answer always|addressed``."""
    mode = command.word("mode") or ""
    await ctx.store.conversations.set_reply_mode(ctx.message.scope, mode, ctx.actor)
    place = "thread" if ctx.message.scope.thread is not None else "channel"
    if mode == "always":
        return CommandReply(f"I'll answer every message in this {place}.")
    return CommandReply(f"I'll answer in this {place} only when mentioned or replied to.")


def where(level: Level) -> str:
    """``This channel``, ``This thread`` or ``The whole community``."""
    return {"thread": "This thread", "channel": "This channel",
            "community": "The whole community"}[level]


async def _library(ctx: CommandContext) -> Library:
    scope = ctx.message.scope
    return await ctx.resolver.library_for(scope.platform, scope.community)
