"""cabot against real inference servers: llama-cpp-python's own OpenAI-compatible server,
and llama.cpp's C++ ``llama-server`` with ``make test-llama-server``.

Each server runs the bundled model in its own process (n_ctx 2048, one thread) on a free
loopback port; every test runs once per kind of server. The replies go through the whole
bot (App, router, queue, remote backend, a recording adapter); the hard-rule tests read
the backend's stream directly, below cabot's stream filter, to see what the server itself
enforced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.app import App
from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.remote import RemoteBackend, most_tokens
from bot.backends.remote.kinds import ServerKind
from bot.errors import ConfigError
from tests.helpers.apps import make_app
from tests.helpers.inference_servers import ServerProcess, llama_server_binary, start_server
from tests.helpers.recording import RecordingAdapter, message

pytestmark = pytest.mark.model

LONG = "Write a long story about a dragon who learns to fly, with many details."
STORY_LAYER = """
name = "story"
description = "Greedy and long, so a reply is still streaming when a server is killed."
version = "1"
[sampling]
temperature = 0.0
max_tokens = 200
"""
STORY_PROFILES = """
[profiles.story]
description = "Greedy, long replies."
layers = ["base", "helpful", "story"]
"""


@pytest.fixture(scope="module", params=[
    "llama-cpp-python",
    pytest.param("llama-server", marks=pytest.mark.llama_server),
])
def kind(request: pytest.FixtureRequest) -> ServerKind:
    """The kind of server the module's tests run on (llama-server: when opted into)."""
    if request.param == "llama-server" and llama_server_binary(built=False) is None:
        pytest.skip("set CABOT_LLAMA_SERVER (make test-llama-server) to test llama-server")
    chosen: ServerKind = request.param
    return chosen


@pytest.fixture(scope="module")
def servers(kind: ServerKind, model_path: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[list[ServerProcess]]:
    """Two servers of ``kind`` on the bundled model, for the module's tests."""
    logs = tmp_path_factory.mktemp("server-logs")
    started = [start_server(kind, model_path, logs) for _ in range(2)]
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def spare(kind: ServerKind, model_path: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    """One more server, for a test to kill."""
    server = start_server(kind, model_path, tmp_path)
    yield server
    server.stop()


def remote(*servers: ServerProcess, **options: Any) -> RemoteBackend:
    return RemoteBackend([s.url for s in servers], kind=servers[0].kind,
                         health_interval=3600, **options)


async def started_bot(tmp_path: Path, backend: RemoteBackend
                      ) -> tuple[App, RecordingAdapter]:
    layers = tmp_path / "layers"
    layers.mkdir(exist_ok=True)
    (layers / "story.toml").write_text(STORY_LAYER)
    (layers / "story.profiles.toml").write_text(STORY_PROFILES)
    app = make_app(tmp_path, backend, layers_dir=layers, default_profile="story",
                   n_ctx=2048)
    adapter = RecordingAdapter()
    await app.start([adapter])
    return app, adapter


def reply_to(adapter: RecordingAdapter, channel: str) -> str:
    [shown] = [s for s in adapter.shown if s.scope.channel == channel and not s.ephemeral]
    return shown.text


async def test_a_reply_streams_through_the_whole_bot(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    backend = remote(servers[0])
    app, adapter = await started_bot(tmp_path, backend)
    try:
        assert adapter.sink is not None
        await adapter.sink(message("Tell me about cats."))
        await app.router.drain()
        history = await app.store.conversations.history(message("x").scope, 10)
    finally:
        await app.stop()
    [shown] = [s for s in adapter.shown if not s.ephemeral]
    assert len(shown.text.split()) >= 5
    assert len(shown.versions) >= 3  # streamed: the text grew edit by edit
    assert history == [("user", "Tell me about cats."), ("assistant", shown.text)]


async def test_two_servers_serve_two_channels_at_once(
        tmp_path: Path, servers: list[ServerProcess]) -> None:
    backend = remote(*servers)
    app, adapter = await started_bot(tmp_path, backend)
    try:
        assert backend.max_parallel == 2
        assert adapter.sink is not None
        await asyncio.gather(adapter.sink(message("Tell me about cats.", channel="a")),
                             adapter.sink(message("Tell me about dogs.", channel="b")))
        await app.router.drain()
        assert backend.pool is not None
        used = {backend.pool._affinity[key][0].label for key in backend.pool._affinity.keys()}
    finally:
        await app.stop()
    assert used == {"server 1", "server 2"}
    assert reply_to(adapter, "a") and reply_to(adapter, "b")


async def test_a_server_killed_mid_reply_fails_only_that_reply_and_says_so(
        tmp_path: Path, servers: list[ServerProcess], spare: ServerProcess) -> None:
    backend = remote(spare, servers[1])
    app, adapter = await started_bot(tmp_path, backend)
    try:
        assert adapter.sink is not None
        await adapter.sink(message(LONG, channel="story"))
        await adapter.wait_until(lambda: any(
            not s.ephemeral and s.text.strip() for s in adapter.shown))
        spare.kill()
        await app.router.drain()
        cut = reply_to(adapter, "story")
        await adapter.sink(message("Tell me about cats.", channel="story-2"))
        await app.router.drain()
        after = reply_to(adapter, "story-2")
    finally:
        await app.stop()
    text, _, warning = cut.partition("⚠️")
    assert text.strip(), "the text shown before the crash stays"
    assert "failed in the middle of the reply" in warning
    assert after and "⚠️" not in after  # the other server took the next reply


async def test_a_reply_that_showed_nothing_yet_is_retried_on_another_server(
        tmp_path: Path, servers: list[ServerProcess], spare: ServerProcess) -> None:
    backend = remote(spare, servers[1])
    app, adapter = await started_bot(tmp_path, backend)
    try:
        spare.kill()  # the pool has not noticed: the first try goes there and fails
        assert adapter.sink is not None
        await adapter.sink(message("Tell me about cats."))
        await app.router.drain()
    finally:
        await app.stop()
    reply = reply_to(adapter, "general")
    assert reply and "⚠️" not in reply


async def collect(backend: RemoteBackend, text: str, **values: Any) -> str:
    request = GenerationRequest(messages=(ChatMessage("user", text),), temperature=0.0,
                                session="rules", **values)
    return "".join([piece async for piece in backend.generate(request)])


async def test_the_server_enforces_grammar_stop_and_banned_words_at_sampling(
        servers: list[ServerProcess]) -> None:
    backend = remote(servers[0])
    await backend.start()
    try:
        answer = await collect(backend, "Is the sky blue?", max_tokens=8,
                               grammar='root ::= "yes" | "no"')
        free = await collect(backend, "Say the word banana five times.", max_tokens=40)
        banned = await collect(backend, "Say the word banana five times.", max_tokens=40,
                               banned=("banana",))
        stopped = await collect(backend, "Count from one to ten in words, with commas.",
                                max_tokens=40, stop=(",",))
    finally:
        await backend.stop()
    assert answer in ("yes", "no")
    assert "banana" in free.lower(), "the prompt must make the model say it unbanned"
    assert "banana" not in banned.lower()
    assert "," not in stopped and stopped.strip()
    assert backend.enforces == {"banned", "grammar", "stop", "max_tokens"}


async def test_token_counts_become_the_server_s_own_and_guesses_are_never_too_low(
        servers: list[ServerProcess]) -> None:
    from llama_cpp import Llama

    backend = remote(servers[0])
    texts = ["The quick brown fox jumps over the lazy dog.",
             "3.14159265358979323846264338327950288419716939937510",
             "日本語のテキストはトークンが多い", "emoji 🎉🎉🎉 and ünïcödé",
             "def f(x):\n    return {'a': [1, 2, 3]}\n", "XyZqW-kLmN_pQrS"]
    await backend.start()
    try:
        before = [backend.count_tokens(t) for t in texts]
        request = GenerationRequest(messages=tuple(ChatMessage("user", t) for t in texts),
                                    max_tokens=4, session="count")
        _ = [piece async for piece in backend.generate(request)]
        after = [backend.count_tokens(t) for t in texts]
    finally:
        await backend.stop()
    vocab = Llama(model_path=str(backend_model(servers[0])), n_ctx=64, vocab_only=True,
                  verbose=False)
    exact = [len(vocab.tokenize(t.encode(), add_bos=False, special=True)) for t in texts]
    vocab.close()
    assert after == exact
    assert before == [most_tokens(t) for t in texts]
    assert all(guess >= real for guess, real in zip(before, exact, strict=True))


def backend_model(server: ServerProcess) -> str:
    args = server.process.args
    assert isinstance(args, list)
    flag = "--model" if "--model" in args else "-m"
    return str(args[args.index(flag) + 1])


async def test_a_wrong_api_key_is_a_clear_error_that_never_shows_the_key(
        kind: ServerKind, model_path: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = start_server(kind, model_path, tmp_path, api_key="the-real-key-31")
    try:
        wrong = remote(server, api_key=SecretStr("a-wrong-key-42"))
        with pytest.raises(ConfigError, match="CABOT_REMOTE_API_KEY") as raised:
            await wrong.start()
        right = remote(server, api_key=SecretStr("the-real-key-31"))
        await right.start()
        try:
            reply = await collect(right, "Hi!", max_tokens=8)
        finally:
            await right.stop()
    finally:
        server.stop()
    assert reply.strip()
    assert "a-wrong-key-42" not in str(raised.value)
    assert "a-wrong-key-42" not in caplog.text and "the-real-key-31" not in caplog.text
