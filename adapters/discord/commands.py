"""Slash commands for every core command, delivered to the core as command text.

Each slash command becomes the text the core parses (``/profile use kids --community``),
so Discord adds no rules of its own: permissions are checked by the core from the
moderator flags the adapter computes when the command runs.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from profiles import Library

Interaction = discord.Interaction[Any]
CommandRunner = Callable[[Interaction, str, bool], Awaitable[None]]
"""Runs ``text`` for an interaction; the flag says whether the answer is likely private."""
LibraryForInteraction = Callable[[Interaction], Awaitable[Library]]

MAX_CHOICES = 25  # Discord's limit per autocomplete answer
MAX_CHOICE_LENGTH = 100

SCOPE_CHOICES = [
    app_commands.Choice(name="this channel (or thread)", value="channel"),
    app_commands.Choice(name="this thread only", value="thread"),
    app_commands.Choice(name="the whole server", value="community"),
]
SCOPE_HELP = "Where the change applies (default: here)"


def command_text(*words: str | None) -> str:
    """The core command for ``words``, quoted so the core's shlex parsing gets them back."""
    return "/" + " ".join(shlex.quote(word) for word in words if word)


def scope_flag(scope: str | None) -> str | None:
    return f"--{scope}" if scope else None


def _choices(names: list[str], typed: str) -> list[app_commands.Choice[str]]:
    typed = typed.strip().lower()
    starts = [n for n in names if n.startswith(typed)]
    inside = [n for n in names if typed in n and n not in starts]
    return [app_commands.Choice(name=n, value=n) for n in (starts + inside)[:MAX_CHOICES]]


def layer_choices(names: list[str], typed: str) -> list[app_commands.Choice[str]]:
    """Completions for a space-separated layer list: the words so far plus one more layer."""
    words = typed.split()
    if typed and not typed.endswith(" "):
        done, last = words[:-1], words[-1].lower()
    else:
        done, last = words, ""
    prefix = " ".join(done)
    choices = []
    for name in names:
        if name in done or not name.startswith(last):
            continue
        value = f"{prefix} {name}".strip()
        if len(value) <= MAX_CHOICE_LENGTH:
            choices.append(app_commands.Choice(name=value, value=value))
        if len(choices) == MAX_CHOICES:
            break
    return choices


def build_commands(
    tree: app_commands.CommandTree[Any], run: CommandRunner, library: LibraryForInteraction
) -> None:
    """Add ``/profile ...``, ``/forget``, ``/answer`` and ``/help`` to ``tree``."""
    profile = app_commands.Group(
        name="profile", description="See or change the profile cabot follows here"
    )

    async def complete_profile(
        interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return _choices(sorted((await library(interaction)).profiles), current)

    async def complete_layers(
        interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return layer_choices(sorted((await library(interaction)).layers), current)

    @profile.command(name="show", description="The profile in effect here and where it is set")
    async def show(interaction: Interaction) -> None:
        await run(interaction, command_text("profile", "show"), True)

    @profile.command(name="explain", description="Exactly what the model is told, by layer")
    @app_commands.describe(name="A profile to explain instead of the one in effect")
    async def explain(interaction: Interaction, name: str | None = None) -> None:
        await run(interaction, command_text("profile", "explain", name), True)

    explain.autocomplete("name")(complete_profile)

    @profile.command(name="list", description="The profiles you can use")
    async def list_profiles(interaction: Interaction) -> None:
        await run(interaction, command_text("profile", "list"), True)

    @profile.command(name="layers", description="The layers you can stack")
    async def layers(interaction: Interaction) -> None:
        await run(interaction, command_text("profile", "layers"), True)

    @profile.command(name="audit", description="The latest profile changes on this server")
    async def audit(interaction: Interaction) -> None:
        await run(interaction, command_text("profile", "audit"), True)

    @profile.command(name="use", description="Switch to a profile (moderators)")
    @app_commands.describe(name="The profile", scope=SCOPE_HELP)
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def use(interaction: Interaction, name: str, scope: str | None = None) -> None:
        await run(interaction, command_text("profile", "use", name, scope_flag(scope)), False)

    use.autocomplete("name")(complete_profile)

    @profile.command(name="set", description="Use an explicit stack of layers (moderators)")
    @app_commands.describe(layers="Layer names, bottom first, separated by spaces",
                           scope=SCOPE_HELP)
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def set_layers(interaction: Interaction, layers: str, scope: str | None = None
                         ) -> None:
        await run(interaction,
                  command_text("profile", "set", *layers.split(), scope_flag(scope)), False)

    set_layers.autocomplete("layers")(complete_layers)

    @profile.command(name="reset", description="Go back to the inherited profile (moderators)")
    @app_commands.describe(scope=SCOPE_HELP)
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def reset(interaction: Interaction, scope: str | None = None) -> None:
        await run(interaction, command_text("profile", "reset", scope_flag(scope)), False)

    @profile.command(name="define", description="Create a server profile from layers "
                     "(server moderators)")
    @app_commands.describe(name="The new profile's name",
                           layers="Layer names, bottom first, separated by spaces")
    async def define(interaction: Interaction, name: str, layers: str) -> None:
        await run(interaction, command_text("profile", "define", name, *layers.split()), False)

    define.autocomplete("layers")(complete_layers)
    tree.add_command(profile)

    @tree.command(name="forget", description="Clear this channel's conversation memory")
    async def forget(interaction: Interaction) -> None:
        await run(interaction, command_text("forget"), False)

    @tree.command(name="answer", description="Answer every message here, or only when "
                  "addressed (moderators)")
    @app_commands.describe(mode="When cabot answers in this channel")
    @app_commands.choices(mode=[
        app_commands.Choice(name="every message", value="always"),
        app_commands.Choice(name="only mentions, replies and commands", value="addressed"),
    ])
    async def answer(interaction: Interaction, mode: str) -> None:
        await run(interaction, command_text("answer", mode), False)

    @tree.command(name="help", description="cabot's commands")
    async def help_command(interaction: Interaction) -> None:
        await run(interaction, command_text("help"), True)
