"""The single engine's prompt cache on the real model: it holds to its capacity, and a
conversation it restores gets the reply llama-cpp-python's own cache gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bot.backends.llama as llama_backend
from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.llama import LlamaBackend, state_bytes
from tests.helpers.engines import reply

pytestmark = pytest.mark.model

SYSTEM = "You are a helpful assistant. Answer briefly."
CAPACITY = 48 << 20
"""Room for a few states of short conversations (about 22.5 KiB of KV a token)."""


def ask(*turns: str) -> GenerationRequest:
    roles = ("user", "assistant")
    messages = (ChatMessage("system", SYSTEM),
                *(ChatMessage(roles[i % 2], text) for i, text in enumerate(turns)))
    return GenerationRequest(messages=messages, temperature=0.0, max_tokens=24)


def cached_states(backend: LlamaBackend) -> list[Any]:
    cache = backend._llama.cache
    return list(cache.cache_state.values())


async def restored(model_path: Path) -> tuple[str, list[Any]]:
    """A conversation's second reply, its first turn restored from the cache."""
    backend = LlamaBackend(model_path, n_ctx=1024, n_threads=1, cache_bytes=CAPACITY)
    await backend.start()
    try:
        first = await reply(backend, ask("What is the capital of France?"))
        second = await reply(backend, ask("What is the capital of France?", first,
                                          "And of Italy?"))
        return second, cached_states(backend)
    finally:
        await backend.stop()


async def test_a_restored_conversation_gets_the_reply_llama_cpp_pythons_cache_gives(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, states = await restored(model_path)
    from llama_cpp.llama_cache import LlamaRAMCache

    monkeypatch.setattr(llama_backend, "prompt_cache",
                        lambda capacity: LlamaRAMCache(capacity_bytes=capacity))
    theirs, their_states = await restored(model_path)
    assert ours == theirs and ours.strip()
    assert states  # the conversation was kept, and found again
    assert sum(state_bytes(s) for s in states) <= CAPACITY
    assert all(s.scores.shape[0] <= 1 for s in states)
    # What llama-cpp-python keeps: the logits of every evaluated token (up to n_batch),
    # more than the KV it counts, and not counted.
    assert sum(s.scores.nbytes for s in their_states) > sum(
        s.llama_state_size for s in their_states)


async def test_the_cache_never_holds_more_than_its_capacity(model_path: Path) -> None:
    backend = LlamaBackend(model_path, n_ctx=1024, n_threads=1, cache_bytes=CAPACITY)
    await backend.start()
    try:
        for question in ("Name a colour.", "Name a fruit.", "Name a city.", "Name a tree.",
                         "Name a river.", "Name a bird."):
            await reply(backend, ask(question))
            assert sum(state_bytes(s) for s in cached_states(backend)) <= CAPACITY
        assert cached_states(backend)
    finally:
        await backend.stop()
