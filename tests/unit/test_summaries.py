"""Older turns are summarised instead of dropped: background jobs of the queue, folded into
the place's summary, shown by /memory and cleared by /forget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.backends.base import ChatMessage, GenerationRequest
from bot.group_chat import SUMMARY_NOTE
from bot.messages import Scope
from bot.queue import InferenceQueue
from bot.summaries import SUMMARY_PROMPT
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.recording import RecordingAdapter, message
from tests.unit.test_queue import collect, settle, started

GENERAL = Scope(platform="test", community="guild", channel="general")
SUMMARY = "Ada likes herons, Bob likes owls; bastard."


def request(text: str = "hi") -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", text),))


async def test_a_background_job_starts_only_when_no_normal_job_waits() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, user_rate=1, max_pending=2)
    await queue.start()
    try:
        first = queue.submit(request("a"), "c1", "u1")
        await backend.wait_for_requests(1)
        low = queue.submit(request("summary"), "c1#summary", "cabot", priority="low")
        second = queue.submit(request("b"), "c2", "u2")
        third = queue.submit(request("c"), "c1", "u3")
        # Background jobs take no part in the rate limit or the bounds of normal jobs.
        queue.submit(request("summary 2"), "c2#summary", "cabot", priority="low")
        assert queue.pending_count == 2
        backend.release()
        await backend.wait_for_requests(2)
        backend.release()
        await backend.wait_for_requests(3)
        await settle()
        assert started(backend, [first, second, third, low]) == [first, second, third]
        backend.release(3)
        assert (await collect(low))[1] is None
        assert started(backend, [first, second, third, low])[-1] is low
        positions = (await collect(third))[2]
        assert positions == [2, 1], "a background job never counts ahead of a normal one"
    finally:
        await queue.stop()


@pytest.fixture
def backend() -> FakeBackend:
    def reply(request: GenerationRequest) -> str:
        if request.messages[0].content == SUMMARY_PROMPT:
            return SUMMARY
        return f"noted: {last_user_text(request)[:20]}"

    return FakeBackend(reply)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"n_ctx": 512, "reply_tokens": 64}


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    await app.router.summaries.drain()
    return "\n".join(shown.text for shown in chat.shown[before:])


LONG = "here is a rather long message about birds and what they eat in winter, " * 3


async def test_older_turns_are_summarised_not_dropped(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile lock family-friendly", community_moderator=True)
    for n in range(8):
        await say(app, chat, f"{n}: {LONG}", author="Ada" if n % 2 else "Bob")
    summaries = [r for r in backend.requests if r.messages[0].content == SUMMARY_PROMPT]
    assert summaries, "the history outgrew the window: its oldest turns were summarised"
    source = summaries[0].messages[1].content
    assert source.startswith("The conversation:\nBob: 0: here is")
    assert "\nAssistant: noted" in source
    assert "bastard" in summaries[0].banned, "the place's banned words hold for summaries"

    stored = await app.store.summaries.summary(GENERAL)
    assert stored is not None and stored.text.startswith("Ada likes herons, Bob likes owls; ")
    assert "bastard" not in stored.text, "a summary passes the stream filter: /memory shows it"
    turns = await app.store.summaries.count(GENERAL)
    assert stored.turns + turns == 16, "every turn is either remembered or summarised"

    await say(app, chat, "what do we like?", author="Ada")
    system = backend.requests[-1].messages[0].content
    assert f"{SUMMARY_NOTE}\n{stored.text}" in system

    memory = await say(app, chat, "/memory")
    assert f"Older messages ({stored.turns}) are remembered as this summary:" in memory
    assert stored.text in memory and "word for word" in memory
    forgot = await say(app, chat, "/forget")
    assert f"and the summary of {stored.turns} older ones" in forgot
    assert await app.store.summaries.summary(GENERAL) is None
    assert "remembers 0 messages word for word.\nNo summary yet" in await say(app, chat,
                                                                             "/memory")


async def test_a_summary_of_forgotten_turns_is_not_stored(
    chat: RecordingAdapter, app: App
) -> None:
    await app.store.conversations.append_exchange(GENERAL, [("user", "a"), ("assistant", "b")],
                                                  40, authors=("Ada", None))
    turns = await app.store.summaries.recent(GENERAL, 10)
    await app.store.conversations.clear_history(GENERAL)
    assert not await app.store.summaries.fold(GENERAL, "a summary", turns)
    assert await app.store.summaries.summary(GENERAL) is None


async def test_a_waiting_background_job_can_be_cancelled_and_is_stopped_with_the_queue() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend)
    await queue.start()
    try:
        busy = queue.submit(request("a"), "c1", "u1")
        await backend.wait_for_requests(1)
        cancelled = queue.submit(request("s1"), "c1#summary", "cabot", priority="low")
        waiting = queue.submit(request("s2"), "c2#summary", "cabot", priority="low")
        cancelled.cancel()
        assert (await collect(cancelled))[1] is not None
    finally:
        await queue.stop()
    assert (await collect(waiting))[1] is not None, "stopping the queue ends it too"
    assert (await collect(busy))[1] is not None
    assert len(backend.requests) == 1


async def test_turns_past_the_memory_bound_are_summarised_before_they_are_trimmed(
    tmp_path: Path, backend: FakeBackend
) -> None:
    app = make_app(tmp_path, backend, history_messages=8)  # the window holds far more
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        for n in range(5):
            await say(app, chat, f"short message {n}", author="Ada")
        stored = await app.store.summaries.summary(GENERAL)
        remembered = await app.store.summaries.count(GENERAL)
    finally:
        await app.stop()
    assert stored is not None and stored.turns == 4, "the older half of the 8 kept turns"
    assert stored.turns + remembered == 10
