"""Personal layers: ``/profile allow``, ``/profile disallow`` and a member's ``/me``."""

from __future__ import annotations

from bot.budgets import Budgets, in_words
from bot.commands.context import CommandContext, CommandReply
from bot.commands.handlers import describe_conflict, where
from bot.errors import BoundLayerError, CommandError
from bot.messages import Command, IncomingMessage
from bot.resolution import Resolved
from bot.store import Actor
from profiles.bounds import find_conflict
from profiles.personal import check_personal, find_personal_conflict

LEVEL_WORDS = {"thread": "this thread", "channel": "this channel",
               "community": "the whole community"}


async def profile_allow(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile allow <layer>...``: layers members may pick for themselves here."""
    scope = ctx.message.scope
    library = await ctx.resolver.library_for(scope.platform, scope.community)
    layers = library.stack(dict.fromkeys(command.words("layers")))
    bounds, _ = await ctx.resolver.bounds_for(scope.platform, scope.community, library)
    for layer in layers:
        conflict = find_conflict([layer], bounds)
        if conflict is not None:
            raise BoundLayerError(
                "No member could use it here: " + describe_conflict(conflict))
    names = tuple(layer.name for layer in layers)
    added = await ctx.store.members.allow(scope, ctx.level, names, ctx.actor)
    notes = []
    if added:
        notes.append(
            f"Members may now pick {', '.join(added)} for themselves in "
            f"{LEVEL_WORDS[ctx.level]} with /me use {added[0]}: on top of the stack here, "
            "for their own replies only (it can add rules, never remove any)."
        )
    if set(names) - set(added):
        notes.append(f"Already allowed: {', '.join(n for n in names if n not in added)}.")
    return CommandReply(" ".join(notes))


async def profile_disallow(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile disallow <layer>...``."""
    scope = ctx.message.scope
    names = tuple(dict.fromkeys(command.words("layers")))
    removed = await ctx.store.members.disallow(scope, ctx.level, names, ctx.actor)
    notes = []
    if removed:
        notes.append(
            f"Members can no longer pick {', '.join(removed)} in {LEVEL_WORDS[ctx.level]}; "
            "whoever picked it gets the stack here without it."
        )
    rest = [name for name in names if name not in removed]
    if rest:
        elsewhere = {a.layer: a for a in await ctx.store.members.allowed(scope)}
        for name in rest:
            allowance = elsewhere.get(name)
            if allowance is None:
                notes.append(f"{name} was not allowed here.")
            else:
                flag = {"community": " --community", "channel": " --channel",
                        "thread": ""}[allowance.level]
                notes.append(
                    f"{name} is allowed for {LEVEL_WORDS[allowance.level]} (by "
                    f"{allowance.by}); disallow it there with /profile disallow {name}{flag}."
                )
    return CommandReply(" ".join(notes))


async def me_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/me``: your personal layers here, what you may pick, and your budget left."""
    message = ctx.message
    scope = message.scope
    chosen = await ctx.store.members.chosen(scope.platform, scope.community, message.author_id)
    allowed = [a.layer for a in await ctx.store.members.allowed(scope)]
    lines = []
    if chosen:
        marks = [name if name in allowed else f"{name} (not allowed here)" for name in chosen]
        lines.append(f"Your personal layers: {', '.join(marks)}.")
    else:
        lines.append("You use no personal layers.")
    if allowed:
        lines.append(f"Allowed here: {', '.join(allowed)} — pick with /me use <layer>..., "
                     "clear with /me reset.")
    else:
        lines.append("No personal layers are allowed here (moderators allow them with "
                     "/profile allow <layer>).")
    lines.append(await describe_budget(ctx.budgets or Budgets(ctx.store.usage), message))
    return CommandReply("\n".join(lines), True)


async def describe_budget(budgets: Budgets, message: IncomingMessage) -> str:
    """The tokens a member has left here, in words."""
    state = await budgets.state(message.scope, message.author_id)
    if not state.limits:
        return "No daily token budget applies to you here."
    lines = ["Tokens left over the last 24 hours: "
             + "; ".join(limit.describe() for limit in state.limits) + "."]
    spent = state.exhausted
    if spent is not None and spent.frees_at is not None:
        wait = max(0.0, spent.frees_at - budgets.now())
        lines.append(f"You'll be answered again in {in_words(wait)}.")
    return " ".join(lines)


async def me_use(ctx: CommandContext, command: Command) -> CommandReply:
    """``/me use <layer>...``: pick layers for your own replies, from those allowed here."""
    message = ctx.message
    scope = message.scope
    place = await ctx.resolver.resolve(scope)
    names = tuple(dict.fromkeys(command.words("layers")))
    layers = place.library.stack(names)
    allowed = [a.layer for a in await ctx.store.members.allowed(scope)]
    refused = [name for name in names if name not in allowed]
    if refused:
        raise CommandError(
            f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not allowed here. "
            + (f"Allowed here: {', '.join(allowed)}." if allowed
               else "No personal layers are allowed here.")
            + " A moderator can allow more with /profile allow <layer>."
        )
    conflict = find_personal_conflict(place.stack, layers)
    if conflict is not None:
        raise BoundLayerError(_clash(place, conflict.layer, conflict.other, conflict.reason))
    check_personal(place.stack, layers)  # a missing requirement, said by compose()
    actor = Actor(id=message.author_id, name=message.author_name)
    await ctx.store.members.choose(scope.platform, scope.community, actor, names)
    return CommandReply(
        f"Your replies in this community now add {', '.join(names)} on top of each place's "
        "stack, wherever it is allowed (only for you; the rules here still hold). "
        "/profile show lists your stack; /me reset clears it.", True)


async def me_reset(ctx: CommandContext, command: Command) -> CommandReply:
    """``/me reset``."""
    message = ctx.message
    scope = message.scope
    actor = Actor(id=message.author_id, name=message.author_name)
    old = await ctx.store.members.choose(scope.platform, scope.community, actor, ())
    if not old:
        return CommandReply("You had no personal layers; nothing changed.", True)
    return CommandReply(f"Dropped your personal layers ({', '.join(old)}); your replies follow "
                        "each place's stack again.", True)


def _clash(place: Resolved, layer: str, other: str, reason: str) -> str:
    bound = place.bound(other)
    text = f"Your layer {layer!r} {reason} {other!r}, which "
    if bound is not None and bound.kind == "floor":
        text += "the operator of this bot sets for every community"
    elif bound is not None:
        text += f"{bound.by} locked for this whole community"
    else:
        text += f"{where(place.binding.level).lower() if place.binding else 'this place'} uses"
    return text + "; pick another layer (a personal layer can add rules, never drop one)."
