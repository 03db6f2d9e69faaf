"""Streaming a reply: throttled edits, splits, and a final text that always arrives."""

from __future__ import annotations

import pytest

from bot.adapter import Capabilities
from bot.errors import PlatformRateLimitError
from bot.messages import SentMessage
from bot.streaming import SURPLUS_MARKER, ReplyStreamer
from tests.helpers.clock import FakeClock
from tests.helpers.recording import RecordingAdapter, message


class FlakyAdapter(RecordingAdapter):
    """Answers the first ``failures`` edits with a rate-limit error."""

    def __init__(self, failures: int, retry_after: float) -> None:
        super().__init__(Capabilities(max_message_length=100, edit_interval=1.0))
        self.failures = failures
        self.retry_after = retry_after

    async def edit(self, sent: SentMessage, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise PlatformRateLimitError("slow down", self.retry_after)
        await super().edit(sent, text)


async def test_edits_are_throttled_to_the_edit_interval() -> None:
    clock = FakeClock(start=0.0)
    adapter = RecordingAdapter(Capabilities(max_message_length=2000, edit_interval=1.0))
    streamer = ReplyStreamer(adapter, message("hi"), clock)
    text = ""
    for step in range(50):  # 50 pieces over 5 seconds
        text += f"word{step} "
        clock.now = step * 0.1
        await streamer.update(text)
    await streamer.finish(text.strip())
    assert adapter.texts() == [text.strip()]
    assert streamer.sends == 1
    assert 4 <= streamer.edits <= 6  # about one per second, plus the final one


async def test_a_rate_limited_final_edit_is_retried_after_the_wait() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    adapter = FlakyAdapter(failures=1, retry_after=2.5)
    streamer = ReplyStreamer(adapter, message("hi"), FakeClock(), sleep=sleep)
    await streamer.update("partial")
    await streamer.finish("partial and complete")
    assert waits == [2.5]
    assert adapter.texts() == ["partial and complete"]


async def test_a_too_long_rate_limit_fails_the_final_delivery() -> None:
    adapter = FlakyAdapter(failures=5, retry_after=600)
    streamer = ReplyStreamer(adapter, message("hi"), FakeClock(), max_wait=60)
    await streamer.update("partial")
    with pytest.raises(PlatformRateLimitError):
        await streamer.finish("complete")


async def test_messages_beyond_a_shorter_final_text_are_emptied() -> None:
    adapter = RecordingAdapter(Capabilities(max_message_length=100, edit_interval=0.0))
    streamer = ReplyStreamer(adapter, message("hi"), FakeClock())
    long = " ".join(f"sentence{i}." for i in range(30))  # about 330 characters
    await streamer.update(long)
    assert len(adapter.shown) == 4
    await streamer.finish(long[:90].rsplit(" ", 1)[0] + " …")
    assert adapter.texts()[1:] == [SURPLUS_MARKER] * 3
    assert adapter.texts()[0].endswith("…")
