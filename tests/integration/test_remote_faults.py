"""The remote backend against a fake server that misbehaves on demand, through the whole bot.

503s, a stream that breaks, a malformed stream, a stall under the queue's timeout, a key
refused and a thinking model: what the user sees, and which server did the work.
(The real server's streaming, pool and kill tests are in ``test_remote_server.py``.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import App
from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.remote import RemoteBackend
from bot.errors import JobTimeoutError, RemoteAuthError
from bot.queue import InferenceQueue
from tests.helpers.apps import make_app
from tests.helpers.fake_openai import Answer, FakeOpenAI
from tests.helpers.recording import RecordingAdapter, message

FakeServers = Callable[..., Awaitable[FakeOpenAI]]


@pytest.fixture
async def fake_server() -> AsyncIterator[FakeServers]:
    """Starts fake servers (``await fake_server(slots=2)``); stops them after the test."""
    started: list[FakeOpenAI] = []

    async def start(**options: Any) -> FakeOpenAI:
        server = FakeOpenAI(**options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def bot(tmp_path: Path, *servers: FakeOpenAI, **options: Any
              ) -> tuple[App, RecordingAdapter, RemoteBackend]:
    backend = RemoteBackend([s.url for s in servers], kind="llama-server",
                            health_interval=3600, **options)
    app = make_app(tmp_path, backend, n_ctx=2048, reply_tokens=64)
    adapter = RecordingAdapter()
    await app.start([adapter])
    return app, adapter, backend


async def ask(app: App, adapter: RecordingAdapter, text: str, channel: str = "general") -> str:
    """The final text of the bot's reply to ``text``."""
    assert adapter.sink is not None
    before = len(adapter.shown)
    await adapter.sink(message(text, channel=channel))
    await app.router.drain()
    replies = [s for s in adapter.shown[before:] if not s.ephemeral]
    assert replies, "the bot said nothing"
    return replies[-1].text


async def test_a_503_sends_the_job_to_another_server(
        tmp_path: Path, fake_server: FakeServers) -> None:
    busy = await fake_server()
    busy.default = Answer("status", status=503, retry_after=30)
    ready = await fake_server()
    app, adapter, _ = await bot(tmp_path, busy, ready)
    try:
        assert await ask(app, adapter, "hi") == "Hello there!"
        assert await ask(app, adapter, "hi again", channel="other") == "Hello there!"
    finally:
        await app.stop()
    assert len(busy.bodies) == 1  # asked once, then left alone for its Retry-After
    assert len(ready.bodies) == 2


async def test_a_busy_only_server_is_asked_again_after_its_retry_after(
        tmp_path: Path, fake_server: FakeServers) -> None:
    server = await fake_server()
    server.answer(Answer("status", status=429, retry_after=0.05))
    app, adapter, _ = await bot(tmp_path, server)
    try:
        assert await ask(app, adapter, "hi") == "Hello there!"
    finally:
        await app.stop()
    assert len(server.bodies) == 2


async def test_a_server_dying_before_any_text_is_retried_elsewhere(
        tmp_path: Path, fake_server: FakeServers) -> None:
    dying = await fake_server()
    dying.answer(Answer("die", pieces=["<think>first I will", " plan"]))
    ready = await fake_server()
    ready.default = Answer(pieces=["Fine", " answer."])
    app, adapter, _ = await bot(tmp_path, dying, ready)
    try:
        assert await ask(app, adapter, "hi") == "Fine answer."
    finally:
        await app.stop()
    assert not any("plan" in text for text in adapter.every_version())


async def test_a_server_dying_mid_reply_keeps_the_text_and_says_so(
        tmp_path: Path, fake_server: FakeServers) -> None:
    dying = await fake_server()
    dying.answer(Answer("die", pieces=["Once", " upon", " a time"]))
    spare = await fake_server()
    app, adapter, _ = await bot(tmp_path, dying, spare)
    try:
        reply = await ask(app, adapter, "tell me a story")
    finally:
        await app.stop()
    assert reply.startswith("Once upon a time")
    assert "failed in the middle of the reply" in reply
    assert spare.bodies == []  # text was shown: not started again elsewhere


async def test_a_malformed_event_stream_is_a_clear_error(
        tmp_path: Path, fake_server: FakeServers) -> None:
    server = await fake_server()
    server.default = Answer("malformed", pieces=[])
    app, adapter, _ = await bot(tmp_path, server)
    try:
        reply = await ask(app, adapter, "hi")
    finally:
        await app.stop()
    assert reply.startswith("⚠️") and "malformed event stream" in reply


async def test_no_server_answering_is_said_at_once(tmp_path: Path) -> None:
    backend = RemoteBackend(["http://127.0.0.1:9"], health_interval=3600)
    app = make_app(tmp_path, backend)
    adapter = RecordingAdapter()
    await app.start([adapter])
    try:
        reply = await ask(app, adapter, "hi")
    finally:
        await app.stop()
    assert "No inference server is answering" in reply


async def test_a_refused_key_is_named_but_never_shown_or_logged(
        tmp_path: Path, fake_server: FakeServers, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = await fake_server(chat_key="the-right-key")
    app, adapter, _ = await bot(tmp_path, server, api_key=SecretStr("wrong-key-0451"))
    try:
        reply = await ask(app, adapter, "hi")
    finally:
        await app.stop()
    assert "refused cabot's API key" in reply and "CABOT_REMOTE_API_KEY" in reply
    assert server.headers == []  # refused before the body was read
    assert "wrong-key-0451" not in caplog.text
    assert not any("wrong-key-0451" in text for text in adapter.every_version())


async def test_reasoning_is_never_shown_nor_remembered_and_typing_stays_on(
        tmp_path: Path, fake_server: FakeServers) -> None:
    server = await fake_server()
    server.default = Answer(reasoning=["The user", " greets me."],
                            pieces=["<think>secret", " plan</think>", "\n\nHi!"], interval=0.05)
    app, adapter, _ = await bot(tmp_path, server)
    adapter.capabilities = type(adapter.capabilities)(
        max_message_length=2000, edit_interval=0.0, can_type=True, typing_interval=0.01)
    try:
        assert await ask(app, adapter, "hello") == "Hi!"
        history = await app.store.conversations.history(message("x").scope, 10)
    finally:
        await app.stop()
    assert adapter.typing >= 2  # the indicator was renewed while the model thought
    assert not any("secret" in t or "greets" in t for t in adapter.every_version())
    assert history[-1] == ("assistant", "Hi!")


def request(text: str = "hi", **values: Any) -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", text),), session="c", **values)


class ManualDeadline:
    """The queue's sleep, ending only when the test says the time is up."""

    def __init__(self) -> None:
        self.up = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.up.wait()


async def test_a_stalled_server_meets_the_queue_timeout_and_its_stream_is_closed(
        fake_server: FakeServers) -> None:
    server = await fake_server()
    server.default = Answer("stall", pieces=["Hello"])
    backend = RemoteBackend([server.url], health_interval=3600)
    deadline = ManualDeadline()
    queue = InferenceQueue(backend, job_timeout=30, sleep=deadline.sleep)
    await backend.start()
    await queue.start()
    try:
        job = queue.submit(request(), "c", "u")
        events = job.events()
        kinds = []
        async for event in events:
            kinds.append(event.kind)
            if event.kind == "text":
                deadline.up.set()
            if event.kind == "error":
                assert isinstance(event.error, JobTimeoutError)
        await asyncio.wait_for(server.disconnected.wait(), 10)
    finally:
        await queue.stop()
        await backend.stop()
    assert kinds[-2:] == ["text", "error"]


async def test_cancelling_a_job_closes_its_http_stream(fake_server: FakeServers) -> None:
    server = await fake_server()
    server.default = Answer("stall", pieces=["Hello"])
    backend = RemoteBackend([server.url], health_interval=3600)
    queue = InferenceQueue(backend)
    await backend.start()
    await queue.start()
    try:
        job = queue.submit(request(), "c", "u")
        async for event in job.events():
            if event.kind == "text":
                job.cancel()
        await asyncio.wait_for(server.disconnected.wait(), 10)
    finally:
        await queue.stop()
        await backend.stop()
    assert server.disconnects == 1
    assert backend.pool is not None and backend.pool.servers[0].in_flight == 0


async def test_slots_and_context_come_from_the_server(fake_server: FakeServers) -> None:
    server = await fake_server(slots=4, n_ctx=512)
    backend = RemoteBackend([server.url], health_interval=3600, n_ctx=2048)
    await backend.start()
    try:
        assert backend.max_parallel == 4
        history = [ChatMessage("user" if i % 2 else "assistant", "word " * 60)
                   for i in range(12)]
        long_history = (*history, ChatMessage("user", "last question"))
        pieces = [p async for p in backend.generate(
            GenerationRequest(messages=long_history, max_tokens=256, session="c"))]
    finally:
        await backend.stop()
    assert "".join(pieces) == "Hello there!"
    body = server.bodies[-1]
    sent = body["messages"]
    assert sent[-1]["content"] == "last question"  # the new message is always kept
    assert len(sent) < len(long_history)  # the oldest history made room
    assert body["max_tokens"] <= 512
    assert body["id_slot"] in range(4)


async def test_a_wrong_key_at_start_every_server_refusing_is_a_config_error(
        fake_server: FakeServers, caplog: pytest.LogCaptureFixture) -> None:
    from bot.errors import ConfigError

    caplog.set_level(logging.DEBUG)
    server = await fake_server(api_key="right")
    backend = RemoteBackend([server.url], api_key=SecretStr("not-the-key-77"))
    with pytest.raises(ConfigError, match="CABOT_REMOTE_API_KEY") as raised:
        await backend.start()
    assert "not-the-key-77" not in str(raised.value) + caplog.text
    assert not isinstance(raised.value, RemoteAuthError)
