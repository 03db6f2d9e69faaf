"""Free-text arguments: a layer's TOML or a message to preview, kept as typed."""

from __future__ import annotations

import pytest

from bot.commands import build_registry
from bot.errors import CommandError
from bot.messages import Command

REGISTRY = build_registry()
TOML = '```toml\ndescription = "it\'s a \\"pirate\\""\n[sampling]\ntemperature = 0.9\n```'


def test_the_toml_after_a_command_keeps_its_lines_and_quotes() -> None:
    command = REGISTRY.parse(f"/layer create pirate {TOML}")
    assert command == Command(("layer", "create"),
                              {"name": "pirate", "toml": TOML, "file": None})
    on_its_own_line = REGISTRY.parse(f"/layer edit pirate\n{TOML}\n")
    assert on_its_own_line is not None and on_its_own_line.args["toml"] == TOML


def test_a_command_with_a_file_and_no_text_leaves_the_text_out() -> None:
    assert REGISTRY.parse("/layer create pirate") == Command(
        ("layer", "create"), {"name": "pirate", "toml": None, "file": None})
    with pytest.raises(CommandError, match="Usage: /layer create <name>"):
        REGISTRY.parse("/layer create")


@pytest.mark.parametrize(("text", "stack", "message"), [
    ("/profile preview kids tell me a joke", ("kids", "tell", "me", "a", "joke"), None),
    ("/profile preview base concise -- tell me a joke", ("base", "concise"), "tell me a joke"),
    ("/profile preview base | what's up?", ("base",), "what's up?"),
    ("/profile preview kids\nWhat is a \"cat\"?\nA second line.", ("kids",),
     'What is a "cat"?\nA second line.'),
])
def test_preview_names_come_first_and_the_message_after_a_separator_or_line(
    text: str, stack: tuple[str, ...], message: str | None
) -> None:
    assert REGISTRY.parse(text) == Command(("profile", "preview"),
                                           {"stack": stack, "message": message})


def test_usage_names_the_free_text_and_the_attached_file() -> None:
    assert REGISTRY.spec(("layer", "create")).usage() == (
        "/layer create <name> [toml] [+ attached .toml file]")
    assert REGISTRY.spec(("profile", "preview")).usage() == (
        "/profile preview <profile or layer> [<profile or layer> ...] [message]")
