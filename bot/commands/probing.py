"""Probes when a moderator switches a place: run them, tell the moderator, warn or block.

When ``/profile use`` or ``/profile set`` selects a stack with probes (its profile's, its
layers', the floor's and the locks'), they run through the shared queue at low priority
(``bot.probes``). What a failing probe does is the community's ``probes`` setting
(``/profile probes warn|block``):

* ``warn`` (the default): the switch happens at once and is announced; the moderator is
  then told how the probes went;
* ``block``: the moderator is told the probes are running; the switch happens only if
  every probe passes, else nothing changes and the failing probes are named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from bot.commands.context import CommandContext, CommandReply
from bot.messages import Command
from bot.probes import summarise
from bot.store.community_settings import CommunitySettings
from profiles import Library, Profile, compose
from profiles.bounds import Bound, bounded_stack
from profiles.probes import stack_probes

ProbeMode = Literal["warn", "block"]
SETTING = "probes"
DEFAULT_MODE: ProbeMode = "warn"


async def probe_mode(ctx: CommandContext) -> ProbeMode:
    """What a failing probe does to a switch in this community."""
    scope = ctx.message.scope
    value = await CommunitySettings(ctx.store.database).get(scope.platform, scope.community,
                                                            SETTING)
    return "block" if value == "block" else DEFAULT_MODE


async def switch_with_probes(
    ctx: CommandContext,
    library: Library,
    names: tuple[str, ...],
    bounds: tuple[Bound, ...],
    profile: Profile | None,
    bind: Callable[[], Awaitable[None]],
    announcement: str,
) -> CommandReply:
    """Bind (through ``bind``) as the community's probe setting says, and report.

    Args:
        ctx: the command's context.
        library: the community's library.
        names: the selected layers.
        bounds: the community's floor and locks.
        profile: the profile selected, if one was.
        bind: makes the switch.
        announcement: what the switch says to the place once made.
    """
    stack = bounded_stack(library.stack(names), bounds)
    probes = stack_probes(stack, profile)
    if not probes or ctx.probes is None:
        await bind()
        return CommandReply(announcement)
    plan = compose(stack)
    what = f"profile '{profile.name}'" if profile is not None else "these layers"
    count = f"{len(probes)} probe{'s' if len(probes) != 1 else ''}"
    place = ctx.message.scope.key()
    if await probe_mode(ctx) == "block":
        await _tell(ctx, f"🔎 Running {count} of {what} before switching (this community "
                         "blocks switches whose probes fail); nothing changes until they "
                         "pass.")
        results = await ctx.probes.run(plan, probes, place)
        if not all(result.passed for result in results):
            return CommandReply(
                f"Not switched: {summarise(results)}\nThis community blocks switches to "
                "stacks whose probes fail. Fix the layers, or a community moderator can "
                "let failing probes only warn with /profile probes warn.", ephemeral=True)
        await bind()
        return CommandReply(f"{announcement}\n{summarise(results)}")
    await bind()
    await _tell(ctx, f"{announcement}\n🔎 Running {count} of {what}; I'll tell you how they "
                     "go.", ephemeral=False)
    results = await ctx.probes.run(plan, probes, place)
    note = ("" if all(result.passed for result in results) else
            "\nThe switch stands (this community's probes only warn: /profile probes block "
            "makes failing probes stop a switch).")
    return CommandReply(f"Probes of {what}: {summarise(results)}{note}", ephemeral=True)


async def _tell(ctx: CommandContext, text: str, ephemeral: bool = True) -> None:
    if ctx.notify is not None:
        await ctx.notify(CommandReply(text, ephemeral))


async def profile_probes(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile probes [warn|block]``: what a failing probe does to a switch here."""
    mode = command.word("mode")
    scope = ctx.message.scope
    if mode is None:
        current = await probe_mode(ctx)
        return CommandReply(f"Failing probes here {_meaning(current)} (set with /profile "
                            "probes warn|block).", ephemeral=True)
    await CommunitySettings(ctx.store.database).set(scope.platform, scope.community, SETTING,
                                                    mode, ctx.actor)
    return CommandReply(f"From now on, failing probes {_meaning(mode)}.")


def _meaning(mode: str) -> str:
    if mode == "block":
        return "block a switch: a stack whose probes fail is not switched to"
    return "only warn: a switch happens, and the moderator is told which probes failed"
