"""The handlers of cabot's commands; :mod:`bot.commands.catalog` declares them."""

from __future__ import annotations

import re

from bot.commands.context import CommandContext, CommandReply
from bot.commands.render import (
    describe_audit,
    describe_stack,
    explain_plan,
    list_layers,
    list_profiles,
)
from bot.errors import CommandError
from bot.messages import Command
from bot.store import Level
from profiles import Library, compose
from profiles.models import NAME_PATTERN

AUDIT_ENTRIES = 15


async def show_help(ctx: CommandContext, command: Command) -> CommandReply:
    """``/help``."""
    return CommandReply(ctx.help_text, ephemeral=True)


async def profile_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile show``."""
    return CommandReply(describe_stack(await ctx.resolver.resolve(ctx.message.scope)), True)


async def profile_explain(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile explain [profile]``."""
    scope = ctx.message.scope
    name = command.word("profile")
    if name is not None:
        library = await _library(ctx)
        profile = library.profile(name)
        plan = compose(library.stack(profile.layers))
        return CommandReply(
            explain_plan(plan, f"Profile '{profile.name}': {profile.description}"), True
        )
    resolved = await ctx.resolver.resolve(scope)
    what = f"Profile '{resolved.profile}'" if resolved.profile else "Custom layer stack"
    return CommandReply(explain_plan(resolved.plan, f"{what} — {resolved.source()}"), True)


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
    compose(library.stack(profile.layers))
    await ctx.store.alignment.bind(ctx.message.scope, ctx.level, ctx.actor, profile=profile.name)
    return CommandReply(f"{where(ctx.level)} now uses profile '{profile.name}' "
                        f"({', '.join(profile.layers)}).")


async def profile_set(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile set <layer> [<layer> ...]``."""
    names = command.words("layers")
    compose((await _library(ctx)).stack(names))
    await ctx.store.alignment.bind(ctx.message.scope, ctx.level, ctx.actor, layers=names)
    return CommandReply(f"{where(ctx.level)} now uses the layers {', '.join(names)}.")


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
    compose((await _library(ctx)).stack(layers))
    scope = ctx.message.scope
    await ctx.store.alignment.save_custom_profile(
        scope.platform, scope.community, name, layers, f"Defined by {ctx.actor.name}", ctx.actor
    )
    return CommandReply(
        f"Profile '{name}' ({', '.join(layers)}) is now available in this community; "
        f"switch to it with /profile use {name}."
    )


async def forget(ctx: CommandContext, command: Command) -> CommandReply:
    """``/forget``."""
    removed = await ctx.store.conversations.clear_history(ctx.message.scope)
    return CommandReply(f"Forgot this channel's conversation ({removed} messages).")


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
