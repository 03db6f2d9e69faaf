"""``/profile automod import|show``: the server's AutoMod keyword rules as a locked layer.

``import`` reads the community's AutoMod rules through its adapter (``bot.automod``;
Discord needs the bot to have Manage Server), writes them as the community layer
``automod`` (``profiles.automod``) and locks it into every stack of the community, so
cabot never posts what the server's own AutoMod would block. ``show`` compares that
layer with the rules as they are now.
"""

from __future__ import annotations

import time

from bot.commands.context import CommandContext, CommandReply
from bot.errors import CommandError
from bot.messages import Command
from profiles.automod import (
    LAYER_NAME,
    AutoModDiff,
    AutoModRule,
    Entry,
    automod_layer,
    compare,
    is_automod_layer,
)
from profiles.packages import layer_source

LISTED = 15
"""Keywords or patterns listed per side in ``show`` before the rest are counted."""


async def _rules(ctx: CommandContext) -> tuple[AutoModRule, ...]:
    if ctx.automod is None:
        raise CommandError("This platform has no AutoMod to read: /profile automod is for "
                           "Discord servers.")
    return await ctx.automod.automod_rules(ctx.message)


async def profile_automod(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile automod import|show``."""
    if command.word("action") == "show":
        return await _show(ctx)
    return await _import(ctx)


async def _import(ctx: CommandContext) -> CommandReply:
    scope = ctx.message.scope
    rules = await _rules(ctx)
    imported = automod_layer(rules, ctx.actor.name)
    library = await ctx.resolver.library_for(scope.platform, scope.community)
    existing = library.layers.get(LAYER_NAME)
    if existing is not None and not is_automod_layer(existing):
        raise CommandError(f"This community already has a layer called {LAYER_NAME!r} that "
                           "an AutoMod import did not make; rename or delete it first.")
    if not imported.entries:
        return CommandReply(
            "The server has no AutoMod keyword or pattern cabot can hold, so nothing was "
            f"imported.\n{imported.report()}", ephemeral=True)
    alignment = ctx.store.alignment
    await alignment.save_custom_layer(scope.platform, scope.community, LAYER_NAME,
                                      layer_source(imported.layer), ctx.actor)
    locked = await alignment.lock(scope.platform, scope.community, (LAYER_NAME,), ctx.actor)
    changed = ("" if existing is None else
               f" It replaces the previous import ({_difference(compare(existing, rules))}).")
    lock = ("It is locked into every stack of this community" if locked else
            "It was already locked into every stack of this community")
    return CommandReply(
        f"{imported.report()}\n{lock}: cabot will not post what these rules block."
        f"{changed} Compare it with the server's rules later with /profile automod show.")


async def _show(ctx: CommandContext) -> CommandReply:
    scope = ctx.message.scope
    rules = await _rules(ctx)
    library = await ctx.resolver.library_for(scope.platform, scope.community)
    layer = library.layers.get(LAYER_NAME)
    fresh = automod_layer(rules)
    if layer is None or not is_automod_layer(layer):
        return CommandReply(
            f"No AutoMod layer here yet. The server's rules now: {fresh.report()}\n"
            "/profile automod import makes the layer from them.", ephemeral=True)
    diff = compare(layer, rules)
    when = ""
    stamp = await _imported_at(ctx)
    if stamp is not None:
        when = f" (imported {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(stamp))})"
    if diff.in_sync:
        return CommandReply(f"The {LAYER_NAME} layer{when} matches the server's AutoMod rules:"
                            f" {fresh.report()}", ephemeral=True)
    lines = [f"The {LAYER_NAME} layer{when} differs from the server's AutoMod rules now:"]
    lines.extend(_listed("+", diff.missing, "in AutoMod, not in the layer: cabot could post it"))
    lines.extend(_listed("-", diff.stale, "in the layer, no longer in AutoMod"))
    lines.append("Run /profile automod import to bring the layer up to date.")
    return CommandReply("\n".join(lines), ephemeral=True)


def _listed(sign: str, entries: tuple[Entry, ...], meaning: str) -> list[str]:
    lines = [f"{sign} {entry.describe()} — {meaning}" for entry in entries[:LISTED]]
    if len(entries) > LISTED:
        lines.append(f"{sign} … and {len(entries) - LISTED} more")
    return lines


def _difference(diff: AutoModDiff) -> str:
    if diff.in_sync:
        return "no change"
    return f"{len(diff.missing)} added, {len(diff.stale)} removed"


async def _imported_at(ctx: CommandContext) -> float | None:
    scope = ctx.message.scope
    for entry in await ctx.store.alignment.audit_log(scope.platform, scope.community, 200):
        if entry.action == "define layer" and entry.new == LAYER_NAME:
            return entry.at
    return None
