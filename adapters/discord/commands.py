"""Discord's slash commands, generated from the core's command registry.

Each declared command becomes a slash command (a group's commands become subcommands)
with typed options: choices for fixed values, autocomplete for profiles and layers. An
invocation reaches the core as a typed :class:`~bot.messages.Command`; Discord adds no
rules of its own: permissions are checked by the core from the moderator flags the
adapter computes when the command runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import discord
from discord import app_commands

from bot.commands import ArgKind, Argument, CommandSpec, Registry
from bot.messages import ArgValue, Command
from profiles import Library

Interaction = discord.Interaction[Any]
CommandRunner = Callable[[Interaction, Command, bool], Awaitable[None]]
"""Runs a command for an interaction; the flag says whether the answer is private."""
LibraryForInteraction = Callable[[Interaction], Awaitable[Library]]
Completer = Callable[[Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]

MAX_CHOICES = 25  # Discord's limit per autocomplete answer
MAX_CHOICE_LENGTH = 100
MAX_DESCRIPTION = 100  # Discord's limit for command and option descriptions


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


def command_text(command: Command) -> str:
    """How the command reads typed out (``/profile use kids --community``), for logs."""
    words = ["/" + " ".join(command.path)]
    for name, value in command.args.items():
        if value is None:
            continue
        if name == "scope":
            words.append(f"--{value}")
        else:
            words.extend(value if isinstance(value, tuple) else [value])
    return " ".join(words)


def build_commands(
    tree: app_commands.CommandTree[Any],
    registry: Registry,
    run: CommandRunner,
    library: LibraryForInteraction,
) -> None:
    """Add a slash command to ``tree`` for every command in ``registry``."""
    completers = _completers(library)
    for name in registry.top_level:
        children = registry.children(name)
        if not children:
            tree.add_command(_slash(registry.spec((name,)), run, completers))
            continue
        group_info = registry.groups.get(name)
        group = app_commands.Group(
            name=name, description=_describe(group_info.description if group_info else name)
        )
        for spec in children:
            group.add_command(_slash(spec, run, completers, parent=group))
        tree.add_command(group)


def _completers(library: LibraryForInteraction) -> dict[tuple[ArgKind, bool], Completer]:
    async def profiles(interaction: Interaction, current: str
                       ) -> list[app_commands.Choice[str]]:
        return _choices(sorted((await library(interaction)).profiles), current)

    async def layer(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return _choices(sorted((await library(interaction)).layers), current)

    async def layers(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return layer_choices(sorted((await library(interaction)).layers), current)

    async def stack(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        found = await library(interaction)
        named = _choices(sorted(found.profiles), current) if " " not in current else []
        more = layer_choices(sorted(found.layers), current)
        return (named + [c for c in more if c.name not in found.profiles])[:MAX_CHOICES]

    async def pair(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        found = await library(interaction)
        named = _choices(sorted(found.profiles), current) if "+" not in current else []
        more = layer_choices(sorted(found.layers), current.replace("+", " "))
        joined = [app_commands.Choice(name=c.name.replace(" ", "+"),
                                      value=c.value.replace(" ", "+")) for c in more]
        return (named + [c for c in joined if c.name not in found.profiles])[:MAX_CHOICES]

    return {(ArgKind.PROFILE, False): profiles, (ArgKind.LAYER, False): layer,
            (ArgKind.LAYER, True): layers, (ArgKind.STACK, True): stack,
            (ArgKind.STACK, False): pair}


def _slash(
    spec: CommandSpec,
    run: CommandRunner,
    completers: dict[tuple[ArgKind, bool], Completer],
    parent: app_commands.Group | None = None,
) -> app_commands.Command[Any, ..., None]:
    """One slash command whose options are ``spec``'s arguments."""

    async def callback(interaction: Interaction, **values: str | discord.Attachment | None
                       ) -> None:
        args: dict[str, ArgValue] = {}
        for arg in spec.arguments:
            value = values.get(arg.name)
            if isinstance(value, discord.Attachment):
                # The core reads the file from the message's attachments; the name is enough.
                value = value.filename
            args[arg.name] = tuple(value.split()) if arg.many and value else value
        await run(interaction, Command(spec.path, args), spec.private)

    # discord.py reads a command's options from its callback's signature.
    callback.__dict__["__signature__"] = inspect.Signature(
        [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           annotation=discord.Interaction)]
        + [_parameter(arg) for arg in spec.arguments]
    )
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=spec.path[-1], description=_describe(spec.description), callback=callback,
        parent=parent,
    )
    descriptions = {arg.name: arg.description for arg in spec.arguments}
    if descriptions:
        app_commands.describe(**descriptions)(command)
    fixed = {arg.name: [app_commands.Choice(name=c.label, value=c.value) for c in arg.choices]
             for arg in spec.arguments if arg.choices}
    if fixed:
        app_commands.choices(**fixed)(command)
    for arg in spec.arguments:
        completer = completers.get((arg.kind, arg.many))
        if completer is not None and not arg.choices:
            command.autocomplete(arg.name)(completer)
    return command


def _parameter(arg: Argument) -> inspect.Parameter:
    # A file is an attachment option; everything else (free text too) is a string.
    kind: type = discord.Attachment if arg.kind is ArgKind.FILE else str
    if arg.required:
        return inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=kind)
    return inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY,
                             annotation=kind | None, default=None)


def _describe(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"
