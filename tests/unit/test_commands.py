"""The command registry: one declaration feeds the parser, /help, the README, Discord, Telegram."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

from adapters.discord.commands import build_commands, command_text
from adapters.telegram.menu import bot_commands
from bot.commands import ArgKind, Command, build_registry
from bot.errors import CommandError

README = Path(__file__).parents[2] / "README.md"
REGISTRY = build_registry()


@pytest.mark.parametrize(("text", "path", "args"), [
    ("/profile use kids --community", ("profile", "use"), {"profile": "kids",
                                                           "scope": "community"}),
    ("/profile use kids \u2014channel", ("profile", "use"), {"profile": "kids",
                                                            "scope": "channel"}),
    ("/profile use --server kids", ("profile", "use"), {"profile": "kids", "scope": "community"}),
    ("/profile set base concise", ("profile", "set"), {"layers": ("base", "concise")}),
    ("/profile", ("profile", "show"), {}),
    ("/PROFILE Explain kids", ("profile", "explain"), {"profile": "kids"}),
    ("/profile explain", ("profile", "explain"), {"profile": None}),
    ("/answer ALWAYS", ("answer",), {"mode": "always"}),
    ("/help@cabot_bot", ("help",), {}),
    ("/profile define fun base humor", ("profile", "define"),
     {"name": "fun", "layers": ("base", "humor")}),
])
def test_text_commands_parse_to_typed_commands(
    text: str, path: tuple[str, ...], args: dict[str, Any]
) -> None:
    command = REGISTRY.parse(text)
    assert command is not None and command.path == path
    given = {name: value for name, value in command.args.items() if value is not None}
    assert given == {name: value for name, value in args.items() if value is not None}


@pytest.mark.parametrize("text", ["hello", "/weather today", "/", "a /profile use kids"])
def test_other_text_is_not_a_command(text: str) -> None:
    assert REGISTRY.parse(text) is None
    assert not REGISTRY.is_command(text)


@pytest.mark.parametrize(("text", "answer"), [
    ("/profile sho", "did you mean 'show'?"),
    ("/profile use", "Usage: /profile use <profile> [--channel|--community]"),
    ("/profile use kids fiction", "Usage: /profile use <profile>"),
    ("/profile use kids --everywhere", "Unknown option '--everywhere'"),
    ("/answer sometimes", "Usage: /answer always|addressed"),
    ("/forget --community", "takes no option"),
])
def test_bad_commands_say_what_was_wrong(text: str, answer: str) -> None:
    with pytest.raises(CommandError, match=re.escape(answer)):
        REGISTRY.parse(text)


def test_help_lists_every_command_with_its_usage_and_who_may_run_it() -> None:
    lines = REGISTRY.help_text().splitlines()[1:]
    assert len(lines) == len(REGISTRY.specs)
    assert "/profile use <profile> [--channel|--community] — switch this channel (or " \
           "thread/topic) to a profile (moderators)" in lines
    assert any(line.startswith("/profile define") and line.endswith("(community moderators)")
               for line in lines)


def test_the_readme_command_table_is_the_registry() -> None:
    text = README.read_text()
    found = re.search(r"<!-- commands:.*?-->\n(.*?)\n<!-- /commands -->", text, re.S)
    assert found is not None, "README.md lost its generated command table markers"
    assert found.group(1) == REGISTRY.markdown_table(), (
        "README.md's command table differs from the registry; run "
        "`python -m tools.readme_commands` to write it"
    )


def _tree() -> app_commands.CommandTree[Any]:
    client = discord.Client(intents=discord.Intents.none())
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

    async def run(interaction: Any, command: Command, private: bool) -> None:
        raise AssertionError("not invoked here")

    async def library(interaction: Any) -> Any:
        raise AssertionError("not invoked here")

    build_commands(tree, REGISTRY, run, library)
    return tree


async def test_discord_slash_commands_are_generated_from_the_registry() -> None:
    tree = _tree()
    payload = {command["name"]: command for command in
               (c.to_dict(tree) for c in tree.get_commands())}
    assert list(payload) == list(REGISTRY.top_level)
    subcommands = {option["name"]: option for option in payload["profile"]["options"]}
    assert list(subcommands) == [spec.path[1] for spec in REGISTRY.children("profile")]
    for spec in REGISTRY:
        group = {option["name"]: option
                 for option in payload[spec.path[0]].get("options", [])}
        node = group[spec.path[1]] if len(spec.path) > 1 else payload[spec.path[0]]
        options = {option["name"]: option for option in node.get("options", [])}
        assert list(options) == [arg.name for arg in spec.arguments
                                 if arg.required] + [arg.name for arg in spec.arguments
                                                     if not arg.required]
        for arg in spec.arguments:
            option = options[arg.name]
            assert option["required"] is arg.required
            assert option["description"] == arg.description
            if arg.choices:
                assert [c["value"] for c in option["choices"]] == [c.value for c in arg.choices]
            else:
                completed = arg.kind in (ArgKind.PROFILE, ArgKind.LAYER, ArgKind.STACK)
                assert bool(option.get("autocomplete")) is completed
            # A file is an attachment option (type 11), everything else a string (3).
            assert option["type"] == (11 if arg.kind is ArgKind.FILE else 3)


def test_a_typed_command_reads_as_its_text() -> None:
    command = Command(("profile", "set"), {"layers": ("base", "concise"), "scope": "community"})
    assert command_text(command) == "/profile set base concise --community"
    assert REGISTRY.parse(command_text(command)) == command


def test_telegram_menu_has_every_top_level_command() -> None:
    menu = {entry.command: entry.description for entry in bot_commands(REGISTRY)}
    assert list(menu) == list(REGISTRY.top_level)
    assert all(3 <= len(text) <= 256 for text in menu.values())
    for spec in REGISTRY.children("profile"):
        assert spec.path[1] in menu["profile"]
