"""What crosses between an engine's worker thread and the event loop: text and typed errors."""

from __future__ import annotations

import asyncio
import threading
from contextlib import aclosing

import pytest

from bot.backends.bridge import ThreadBridge
from bot.backends.llama import _translate
from bot.backends.token_count import ENTRY_OVERHEAD, TokenCounter
from bot.errors import ContextOverflowError, DecodeFailedError, InferenceError


async def test_pieces_from_a_worker_thread_arrive_in_order_then_end() -> None:
    bridge = ThreadBridge()

    def work() -> None:
        for piece in ("Hel", "lo", "!"):
            bridge.send(piece)
        bridge.finish()

    worker = threading.Thread(target=work)
    worker.start()
    assert [piece async for piece in bridge.pieces()] == ["Hel", "lo", "!"]
    worker.join()
    assert not bridge.cancelled


async def test_a_worker_error_reaches_the_reader_as_the_same_typed_error() -> None:
    bridge = ThreadBridge()
    failure = DecodeFailedError(1, "reading the prompt")

    def work() -> None:
        bridge.send("a")
        bridge.fail(failure)

    worker = threading.Thread(target=work)
    worker.start()
    seen: list[str] = []
    with pytest.raises(DecodeFailedError) as caught:
        async for piece in bridge.pieces():
            seen.append(piece)
    worker.join()
    assert caught.value is failure and caught.value.code == 1
    assert str(failure) == "The model failed while reading the prompt (llama_decode returned 1)."
    assert seen == ["a"]


async def test_a_reader_that_stops_early_cancels_the_worker_and_wakes_it() -> None:
    woken: list[bool] = []
    bridge = ThreadBridge(on_cancel=lambda: woken.append(True))
    bridge.send("first")
    bridge.send("second")
    async with aclosing(bridge.pieces()) as pieces:
        assert await anext(pieces) == "first"
    assert bridge.cancelled and woken == [True]


def test_a_worker_outliving_the_event_loop_is_told_nobody_reads() -> None:
    async def make() -> ThreadBridge:
        return ThreadBridge()

    bridge = asyncio.run(make())
    bridge.send("too late")
    assert bridge.cancelled


def test_llama_cpp_context_overflow_becomes_a_context_overflow_error() -> None:
    error = _translate(ValueError("Requested tokens (600) exceed context window of 512"))
    assert isinstance(error, ContextOverflowError)
    assert str(error) == (
        "The prompt does not fit the model's context window; try /forget or a shorter message."
    )


def test_other_llama_cpp_failures_stay_generic_inference_errors() -> None:
    rejected = _translate(ValueError("bad stop sequence"))
    crashed = _translate(RuntimeError("llama_decode returned 1"))
    ours = InferenceError("The profile's output grammar is not valid GBNF.")
    assert type(rejected) is InferenceError
    assert str(rejected) == "The model rejected the request (bad stop sequence)."
    assert type(crashed) is InferenceError
    assert str(crashed) == "The model failed while generating (RuntimeError)."
    assert _translate(ours) is ours


def test_token_counts_are_tokenized_once_per_text_and_bounded() -> None:
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text.split())

    counter = TokenCounter(max_chars=2 * (ENTRY_OVERHEAD + 10))
    with pytest.raises(InferenceError, match="not loaded"):
        counter("hello")
    counter.open(count)
    assert [counter("one two"), counter("one two"), counter("three")] == [2, 2, 1]
    assert calls == ["one two", "three"]
    counter("four five six")  # a third text: the least recently used one is forgotten
    counter("three")
    counter("one two")
    assert calls == ["one two", "three", "four five six", "one two"]
    counter.close()
    with pytest.raises(InferenceError, match="not loaded"):
        counter("seven")
