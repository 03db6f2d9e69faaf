"""Thinking that a chat template opened in the prompt: only ``</think>`` reaches the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.reasoning import ThinkingFilter
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message


def shown(pieces: list[str], filter_: ThinkingFilter | None = None) -> tuple[str, int]:
    """What a reader ends up with, and how often the text shown so far was taken back."""
    thinking = filter_ or ThinkingFilter()
    visible, restarts = "", 0
    for piece in pieces:
        text = thinking.feed(piece)
        if thinking.restarted():
            visible, restarts = "", restarts + 1
        visible += text
    return visible + thinking.flush(), restarts


@pytest.mark.parametrize("pieces", [
    ["Let me think. The user asks", " for France.</think>\n\nParis."],
    ["Let me think", "</th", "ink>", "\n\nParis."],
    ["x<", "/", "think", ">Paris."],
])
def test_a_lone_closing_tag_takes_back_everything_before_it(pieces: list[str]) -> None:
    assert shown(pieces) == ("Paris.", 1)


def test_after_a_thought_a_closing_tag_is_only_text() -> None:
    assert shown(["<think>a</think>Use </think> to close."]) == ("Use </think> to close.", 0)
    assert shown(["Paris.</think>", " More."]) == ("More.", 1)  # lone: before it was thought


def test_a_reply_without_tags_is_shown_as_it_is() -> None:
    assert shown(["Paris is the capital", " of France. <", "/b>"]) == (
        "Paris is the capital of France. </b>", 0)


def test_without_lone_close_the_tag_is_left_for_a_later_filter() -> None:
    first = ThinkingFilter(lone_close=False)
    passed = "".join(first.feed(p) for p in ["plan</think>", "Paris."]) + first.flush()
    assert passed == "plan</think>Paris."
    assert shown([passed]) == ("Paris.", 1)


# -- through the reply path: what a member sees and what the channel remembers ----------

THOUGHT = "The user greets me. I should greet back and mention the weather"


@pytest.mark.parametrize("reply", [
    f"<think>{THOUGHT}.</think>\n\nHello! Lovely weather today.",
    f"{THOUGHT}.</think>\n\nHello! Lovely weather today.",  # the template opened it
])
async def test_a_reply_never_shows_or_remembers_the_thought(reply: str, tmp_path: Path) -> None:
    backend = FakeBackend(reply, piece_chars=3)
    app = make_app(tmp_path, backend)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        await app.router.handle(chat, message("hi there"))
        assert chat.texts() == ["Hello! Lovely weather today."]
        await app.router.handle(chat, message("and now?"))
        remembered = [m.content for m in backend.requests[-1].messages]
    finally:
        await app.stop()
    assert "Hello! Lovely weather today." in remembered
    assert not any("greet back" in content for content in remembered)
