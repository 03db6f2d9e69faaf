"""Output filters: banned and redacted text never shows, not even mid-stream."""

from __future__ import annotations

import pytest

from bot.filters import BANNED_REPLACEMENT, OutputFilter, refusal_for

URL = (r"\b(?:https?://|www\.)\S+", "[link removed]")


def stream(filter_: OutputFilter, text: str, piece: int) -> list[str]:
    """Every visible state while ``text`` streams in pieces of ``piece`` characters."""
    visible, states = "", []
    for start in range(0, len(text), piece):
        visible += filter_.feed(text[start : start + piece])
        states.append(visible)
    visible += filter_.flush()
    states.append(visible)
    return states


@pytest.mark.parametrize("piece", [1, 2, 3, 5, 8, 13])
def test_url_never_visible_at_any_point(piece: int) -> None:
    text = "See https://example.com/a/b?c=d for details, or www.test.org now."
    states = stream(OutputFilter(redact=[URL]), text, piece)
    for state in states:
        assert "http" not in state and "example" not in state and "www" not in state
    assert states[-1] == "See [link removed] for details, or [link removed] now."


@pytest.mark.parametrize("piece", [1, 2, 4, 7])
def test_banned_words_and_phrases_never_visible(piece: int) -> None:
    text = "Well Darn it, that is a big HECK of a mess. Darning is not. Undarned is fine."
    states = stream(OutputFilter(banned=["darn", "big heck"]), text, piece)
    for state in states:
        assert "darn " not in state.lower() and "darn," not in state.lower()
        assert "darning" not in state.lower()
        assert "heck" not in state.lower()
    assert states[-1] == (
        f"Well {BANNED_REPLACEMENT} it, that is a {BANNED_REPLACEMENT} of a mess. "
        f"{BANNED_REPLACEMENT} is not. Undarned is fine."
    )


def test_no_rules_passes_text_through_immediately() -> None:
    filter_ = OutputFilter()
    assert filter_.feed("hello ") == "hello "
    assert filter_.flush() == ""


def test_text_is_released_progressively() -> None:
    filter_ = OutputFilter(redact=[URL], holdback=10)
    released = filter_.feed("one two three four five six seven eight nine ten ")
    assert released.startswith("one two three")


def test_refusal_matches_case_insensitively() -> None:
    rules = [(r"\bsecret\b", "Not here.")]
    assert refusal_for("Tell me the SECRET", rules) == "Not here."
    assert refusal_for("secretive", rules) is None
