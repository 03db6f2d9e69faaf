"""Lorebook entries in the prompt only when their keys come up, within the budget."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.backends.base import ChatMessage
from bot.lore import system_prompt_for, with_post_history
from profiles import Layer, compose
from profiles.cards import card_layer, read_card
from profiles.lore import Lorebook, LoreEntry
from tests.helpers.cards import CARDS


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture
def mira() -> Layer:
    return card_layer(read_card((CARDS / "mira.v2.json").read_bytes(), "mira")).layer


def test_entries_join_only_when_their_keys_appear(mira: Layer) -> None:
    plan = compose([Layer(name="base", description="b", prompt="You are cabot."), mira])
    quiet = system_prompt_for(plan, ["Hello there", "How are you?"], words)
    assert quiet == plan.system_prompt
    kraken = system_prompt_for(plan, ["Tell me about the KRAKEN please"], words)
    assert kraken.endswith("to keep children off the rocks.")
    assert kraken.startswith("You are cabot.")
    # "Tomas" is case-sensitive; "storm" needs "ship" or "boat" too, and goes before.
    assert "nephew" not in system_prompt_for(plan, ["tomas came by"], words)
    assert "nephew" in system_prompt_for(plan, ["Tomas came by"], words)
    assert "red one" not in system_prompt_for(plan, ["a storm is coming"], words)
    both = system_prompt_for(plan, ["a storm is coming", "is my boat safe?"], words)
    assert both.index("red one") < both.index("You are Captain Mira")
    assert both.index("You are cabot.") < both.index("red one")


def test_only_the_recent_conversation_is_searched(mira: Layer) -> None:
    plan = compose([mira])  # scan depth 3
    old = ["the kraken!", "ok", "fine", "thanks"]
    assert "kraken that lives" not in system_prompt_for(plan, old, words)
    assert "kraken that lives" in system_prompt_for(plan, old[:3], words)


def test_the_budget_keeps_the_highest_priority_in_insertion_order() -> None:
    book = Lorebook(token_budget=6, entries=(
        LoreEntry(keys=("a",), content="one two three", priority=1, insertion_order=1),
        LoreEntry(keys=("b",), content="four five six", priority=9, insertion_order=3),
        LoreEntry(keys=("c",), content="seven eight", priority=5, insertion_order=2),
        LoreEntry(content="always here", constant=True, priority=0, insertion_order=0),
    ))
    chosen = book.select(["a b c"], words)
    assert [e.content for e in chosen] == ["seven eight", "four five six"]
    assert [e.content for e in book.select(["nothing"], words)] == ["always here"]


def test_regex_keys_and_their_limits() -> None:
    entry = LoreEntry(keys=(r"maps?\b",), content="x", use_regex=True)
    assert entry.triggered_by(["old MAPS here"]) and not entry.triggered_by(["mapping"])
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        LoreEntry(keys=("(",), content="x", use_regex=True)
    with pytest.raises(ValidationError, match="at least one key"):
        LoreEntry(content="x")
    catastrophic = LoreEntry(keys=(r"(a+)+$",), content="x", use_regex=True)
    assert not catastrophic.triggered_by(["a" * 40 + "!"])  # timed out: no match, no hang


def test_post_history_follows_the_newest_user_turn(mira: Layer) -> None:
    plan = compose([mira])
    messages = (ChatMessage("system", "s"), ChatMessage("user", "hi"))
    placed = with_post_history(messages, plan)
    assert placed[0] == messages[0]
    assert placed[-1].content == "hi\n\n" + mira.post_history
    assert with_post_history(messages, compose([Layer(name="x", description="x")])) == messages


def test_explain_shows_the_lorebook_and_the_post_history_instructions(mira: Layer) -> None:
    from bot.commands.render import explain_plan

    text = explain_plan(compose([mira]), "Card")
    assert "After the conversation, before each answer:\n  [captain-mira] Answer as" in text
    assert "Lorebook (captain-mira): 3 entries, added when their keys appear in the last 3 " \
           "messages, within 200 tokens:" in text
    assert "  kraken, sea monster: The fishermen of Greyhaven" in text
