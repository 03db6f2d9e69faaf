"""``/profile history``, ``/profile rollback`` and ``/profile restore``: every alignment
change of a place (and every definition of a community profile) is a version, and an
earlier one can be restored — audited like any change, and refused, with the lock's
message, when it would now clash with the operator's floor or a community lock."""

from __future__ import annotations

import re

from bot.commands.context import CommandContext, CommandReply
from bot.commands.handlers import _check_bounded, _library, describe_conflict, where
from bot.commands.render_changes import (
    describe_changes_briefly,
    describe_place_history,
    describe_profile_history,
)
from bot.errors import BoundLayerError, CommandError
from bot.messages import Command
from bot.store import Level
from bot.store.version_log import PlaceVersion
from profiles import Library, compose
from profiles.bounds import Bound, bounded_stack, compose_bounded, find_conflict
from profiles.diff import diff_plans

_VERSION = re.compile(r"^[v#]?(\d{1,9})$", re.IGNORECASE)


def parse_version(word: str, listing: str) -> int:
    """``3`` for ``3``, ``v3`` or ``#3``.

    Raises:
        CommandError: not a version number (``listing`` names the command listing them).
    """
    match = _VERSION.match(word.strip())
    if match is None:
        raise CommandError(f"{word!r} is not a version number (like v3); {listing} lists "
                           "the versions.")
    return int(match.group(1))


def place_words(level: Level) -> str:
    """``this channel``, ``this thread`` or ``the whole community``."""
    return where(level)[:1].lower() + where(level)[1:]


async def profile_history(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile history [profile]``: this place's versions, or a community profile's."""
    name = command.word("profile")
    if name is not None:
        return await _profile_definitions(ctx, name.lower())
    scope = ctx.message.scope
    versions = await ctx.store.versions.place_history(scope, ctx.level)
    scope_flag = " --community" if ctx.level == "community" else ""
    how = f"/profile rollback <version>{scope_flag} restores one"
    return CommandReply(describe_place_history(place_words(ctx.level), versions, how), True)


async def _profile_definitions(ctx: CommandContext, name: str) -> CommandReply:
    scope = ctx.message.scope
    versions = await ctx.store.versions.profile_history(scope.platform, scope.community, name)
    if versions:
        return CommandReply(describe_profile_history(name, versions), True)
    library = await _library(ctx)
    library.profile(name)  # an unknown name: its suggestions
    return CommandReply(
        f"Profile '{name}' is {library.profile_origin(name)}: it is not defined in this "
        "community, so it has no versions here. /profile history without a name shows "
        "this place's changes.", True)


async def profile_rollback(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile rollback [version]``: this place as it was (default: before the last change)."""
    scope, level, versions = ctx.message.scope, ctx.level, ctx.store.versions
    listing = "/profile history" + (" --community" if level == "community" else "")
    latest = await versions.latest_place(scope, level)
    if latest.number == 0:
        raise CommandError(f"Nothing has changed in {place_words(level)} yet, so there is "
                           "nothing to roll back.")
    word = command.word("version")
    number = parse_version(word, listing) if word is not None else latest.number - 1
    target = await versions.place_version(scope, level, number)
    if target is None:
        raise CommandError(f"{place_words(level).capitalize()} has no version {number}; it "
                           f"is at v{latest.number}. {listing} lists its versions.")
    if target.same_state(latest):
        return CommandReply(f"{where(level)} already holds what v{number} held "
                            f"({target.describe()}); nothing changed.", True)
    library = await _library(ctx)
    await _check_restorable(ctx, library, target)
    before = await ctx.resolver.resolve(scope)
    new = await versions.restore_place(scope, level, target, ctx.actor)
    if new is None:
        return CommandReply(f"{where(level)} already holds what v{number} held; nothing "
                            "changed.", True)
    after = await ctx.resolver.resolve(scope)
    return CommandReply(
        f"{where(level)} is back to v{number}: {target.describe()}. This is v{new.number}; "
        f"/profile rollback{' --community' if level == 'community' else ''} undoes it. "
        + describe_changes_briefly(diff_plans(after.plan, before.plan))
    )


async def _check_restorable(ctx: CommandContext, library: Library, target: PlaceVersion
                            ) -> None:
    """Refuse a version that would not compose now, or clash with the floor or a lock.

    Raises:
        BoundLayerError: it clashes with the operator's floor or a community lock.
        ProfileError: a profile or layer it names no longer exists, or it does not compose.
    """
    names: tuple[str, ...] = ()
    if target.profile is not None:
        names = library.profile(target.profile).layers
    elif target.layers is not None:
        names = target.layers
    if target.locks is None:
        if target.binds:
            await _check_bounded(ctx, library, names)
        return
    # A community version brings its locks back too: they must hold beside the floor.
    bounds: list[Bound] = list(ctx.resolver.floor)
    for layer in library.stack(target.locks):
        if any(bound.layer.name == layer.name for bound in bounds):
            continue
        conflict = find_conflict([layer], bounds)
        if conflict is not None:
            raise BoundLayerError(describe_conflict(conflict))
        bounds.append(Bound(layer, "lock", f"v{target.number}"))
    compose(bounded_stack((), bounds))
    if target.binds:
        stack = library.stack(names)
        conflict = find_conflict(stack, bounds)
        if conflict is not None:
            raise BoundLayerError(describe_conflict(conflict))
        compose_bounded(stack, bounds)


async def profile_restore(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile restore <profile> [version]``: an earlier definition of a community profile."""
    scope, versions = ctx.message.scope, ctx.store.versions
    name = (command.word("profile") or "").lower()
    listing = f"/profile history {name}"
    history = await versions.profile_history(scope.platform, scope.community, name, limit=1)
    if not history:
        raise CommandError(f"Profile '{name}' was never defined in this community, so it has "
                           "no earlier definitions; /profile define makes one.")
    latest = history[0]
    word = command.word("version")
    number = parse_version(word, listing) if word is not None else latest.number - 1
    target = await versions.profile_version(scope.platform, scope.community, name, number)
    if target is None:
        raise CommandError(f"Profile '{name}' has no version {number}; it is at "
                           f"v{latest.number}. {listing} lists its versions.")
    if target.layers == latest.layers and target.description == latest.description:
        return CommandReply(f"Profile '{name}' is already defined as v{number} was "
                            f"({', '.join(target.layers)}); nothing changed.", True)
    await _check_bounded(ctx, await _library(ctx), target.layers)
    new = await versions.restore_profile(scope.platform, scope.community, name, target,
                                         ctx.actor)
    return CommandReply(
        f"Profile '{name}' is defined as in v{number} again: {', '.join(target.layers)} "
        f"(now v{new}). Every place using it follows the change."
    )
