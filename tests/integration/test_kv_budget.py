"""The batched engine's shared KV budget on the real SmolLM2 model.

Resident conversations and running replies share ``CABOT_KV_TOKENS`` cells: a reply
reserves its prompt and its reply room when it starts, the least recently used idle
conversation makes room, and a reply that finds the budget held by running ones waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.batched import BatchedBackend
from bot.errors import ConfigError
from tests.helpers.engines import reply

pytestmark = pytest.mark.model

SYSTEM = "You are a helpful assistant. Answer briefly and politely."


def history(topic: str, turns: int) -> list[ChatMessage]:
    """A remembered conversation about ``topic``: about 40 tokens an exchange."""
    messages = []
    for turn in range(turns):
        messages.append(ChatMessage("user", f"Tell me one more thing about {topic}, please "
                                            f"(question {turn + 1})."))
        messages.append(ChatMessage("assistant", f"Here is fact number {turn + 1} about "
                                                 f"{topic}: it is interesting to many people."))
    return messages


def ask(session: str, question: str, earlier: Sequence[ChatMessage] = (),
        max_tokens: int = 16) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("system", SYSTEM), *earlier, ChatMessage("user", question)),
        temperature=0.0, max_tokens=max_tokens, session=session,
    )


async def test_the_least_recently_used_conversation_makes_room(model_path: Path) -> None:
    backend = BatchedBackend(model_path, n_ctx=512, parallel=2, resident=4, kv_tokens=800,
                             n_threads=1, n_threads_batch=1)
    await backend.start()
    try:
        table, stats = backend.engine.table, backend.engine.stats
        requests = {name: ask(name, "And what else?", history(topic, 7))
                    for name, topic in (("a", "birds"), ("b", "trains"), ("c", "chess"))}
        first = {name: await reply(backend, request) for name, request in requests.items()}
        # Three conversations of about 320 tokens do not fit 800 cells: the oldest went.
        assert table.resident("a") is None
        assert table.resident("b") is not None and table.resident("c") is not None
        assert stats.evictions >= 1
        assert table.held() <= 800 and stats.peak_kv_tokens <= 800
        # The evicted one comes back: evaluated again from its text, it answers.
        again = await reply(backend, requests["a"])
        assert table.resident("a") is not None and table.resident("b") is None
        assert table.held() <= 800 and stats.peak_kv_tokens <= 800
    finally:
        await backend.stop()
    assert all(text.strip() for text in (*first.values(), again))


async def test_a_reply_waits_while_running_ones_hold_the_budget(model_path: Path) -> None:
    backend = BatchedBackend(model_path, n_ctx=512, parallel=2, resident=2, kv_tokens=512,
                             n_threads=1, n_threads_batch=1)
    await backend.start()
    try:
        # Each reserves about 270 prompt tokens and 60 of reply room: both cannot run.
        requests = [ask(name, "And what else?", history(topic, 6), max_tokens=60)
                    for name, topic in (("a", "birds"), ("b", "trains"))]
        replies = await asyncio.gather(*(reply(backend, r) for r in requests))
        stats = backend.engine.stats
        assert stats.kv_waits >= 1
        assert stats.peak_batch == 1
        assert stats.peak_kv_tokens <= 512
        assert backend.engine.busy_sequences() == 0
    finally:
        await backend.stop()
    assert all(text.strip() for text in replies)


async def test_a_q8_0_cache_answers(model_path: Path) -> None:
    backend = BatchedBackend(model_path, n_ctx=512, parallel=2, resident=2, kv_type="q8_0",
                             n_threads=1, n_threads_batch=1)
    await backend.start()
    try:
        text = await reply(backend, ask("x", "What is the capital of France?"))
    finally:
        await backend.stop()
    assert "paris" in text.lower()


def test_a_budget_smaller_than_one_window_is_refused_naming_both_settings(
    model_path: Path,
) -> None:
    with pytest.raises(ConfigError) as raised:
        BatchedBackend(model_path, n_ctx=2048, kv_tokens=1000)
    message = str(raised.value)
    assert "CABOT_KV_TOKENS (1000)" in message and "CABOT_N_CTX (2048)" in message
    with pytest.raises(ConfigError, match="CABOT_KV_TYPE is 'q4'"):
        BatchedBackend(model_path, n_ctx=512, kv_type="q4")
