"""The batched engine on the real SmolLM2 model: sequences sharing a batch stay independent."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from bot.backends.banning import BannedWords
from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from bot.backends.native import NativeContext
from bot.errors import ContextOverflowError, DecodeFailedError, InferenceError
from tests.helpers.engines import LIMIT, reply

pytestmark = pytest.mark.model

SYSTEM = (
    "You are a helpful assistant in a group chat. Answer the latest message politely and "
    "directly, and do not invent facts you are not sure about."
)
"""Long enough that a new channel copies its KV from another sequence instead of
evaluating it again (see ``MIN_COPY_GAIN``)."""
QUESTIONS = (
    "What is the capital of France?",
    "List three fruits.",
    "Write a short poem about the sea.",
    "Tell me a joke about cats.",
)
YES_NO = 'root ::= "yes" | "no"'
THREADS = 1
"""One llama.cpp thread: with two, a busy machine (other test runs on these two cores)
can stall every step at llama.cpp's spinning thread barrier, by a factor of ten or more."""


def ask(
    question: str, *, session: str | None = None, history: Sequence[ChatMessage] = (),
    max_tokens: int = 20, **options: object,
) -> GenerationRequest:
    messages = (ChatMessage("system", SYSTEM), *history, ChatMessage("user", question))
    return GenerationRequest(
        messages=messages, temperature=0.0, max_tokens=max_tokens, session=session,
        **options,  # type: ignore[arg-type]
    )


class OneThreadLlama(LlamaBackend):
    """The single-sequence backend with one thread for prompts too (see ``THREADS``)."""

    def _load(self) -> Any:
        from llama_cpp import Llama

        return Llama(model_path=str(self._model_path), n_ctx=self.n_ctx, n_threads=THREADS,
                     n_threads_batch=THREADS, flash_attn=self.flash_attn, verbose=False)


async def together(backend: BatchedBackend, requests: Sequence[GenerationRequest]) -> list[str]:
    return list(await asyncio.gather(*(reply(backend, r) for r in requests)))


async def outcome(backend: BatchedBackend, request: GenerationRequest) -> str | InferenceError:
    try:
        return await reply(backend, request)
    except InferenceError as error:
        return error


EXACT = 0
"""``kv_tokens`` 0: a full KV stream per sequence, the layout in which a reply at
temperature 0 is the same alone, in a batch and on the single engine."""


@asynccontextmanager
async def running(model_path: Path, kv_tokens: int | None) -> AsyncIterator[BatchedBackend]:
    backend = BatchedBackend(model_path, n_ctx=512, parallel=4, resident=4, kv_tokens=kv_tokens,
                             n_threads=THREADS, n_threads_batch=THREADS)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


@pytest.fixture
async def engine(model_path: Path) -> AsyncIterator[BatchedBackend]:
    """The exact layout (a stream of its own per sequence)."""
    async with running(model_path, EXACT) as backend:
        yield backend


@pytest.fixture(params=["exact", "shared"])
async def either(request: pytest.FixtureRequest, model_path: Path) -> AsyncIterator[BatchedBackend]:
    """The exact layout, then the default one: every sequence in one shared KV budget.

    In the shared cache a sequence's cells sit wherever there was room, so llama.cpp's
    sums round differently and a reply may differ from the one it gets alone after a
    near tie: there, a test holds what isolation means (each job's own result, every
    sequence freed) without asking for the same characters.
    """
    async with running(model_path, EXACT if request.param == "exact" else None) as backend:
        yield backend


def exact(backend: BatchedBackend) -> bool:
    return backend.engine.table.budget is None


def same_or_answered(
    backend: BatchedBackend, got: Sequence[object], alone: Sequence[str]
) -> bool:
    """``got`` is ``alone`` in the exact layout; in the shared one every reply came."""
    if exact(backend):
        return list(got) == list(alone)
    return len(got) == len(alone) and all(isinstance(t, str) and t.strip() for t in got)


async def test_a_prompt_in_a_batch_of_four_gives_the_text_it_gives_alone(
    engine: BatchedBackend,
) -> None:
    requests = [ask(q, session=f"c{i}") for i, q in enumerate(QUESTIONS)]
    alone = [await reply(engine, r) for r in requests]
    batched = await together(engine, requests)
    assert engine.engine.stats.peak_batch == 4
    assert engine.engine.stats.copies > 0  # the shared system prompt was copied, not re-read
    assert batched == alone
    assert all(text.strip() for text in alone)


@asynccontextmanager
async def arriving_together(backend: BatchedBackend, requests: Sequence[GenerationRequest]
                            ) -> AsyncIterator[list[asyncio.Task[str]]]:
    """Start ``requests`` so that the engine's worker takes them all in one step."""
    engine = backend.engine
    with engine._cond:  # the worker waits for this lock before it takes new jobs
        tasks = [asyncio.create_task(reply(backend, r)) for r in requests]
        await asyncio.sleep(0)  # each task runs until it has submitted its job
        assert len(engine._inbox) == len(requests)
    yield tasks


async def test_channels_asking_at_once_read_their_prompts_in_one_step(
    either: BatchedBackend,
) -> None:
    """In the shared cache four newcomers' prompts share one call, so none waits for the
    others' prompts before its first token; with a stream each, one prompt a step."""
    stats = either.engine.stats
    before = stats.steps
    requests = [ask(q, session=f"c{i}", max_tokens=1) for i, q in enumerate(QUESTIONS)]
    async with arriving_together(either, requests) as tasks:
        replies = await asyncio.gather(*tasks)
    assert len(replies) == 4
    assert stats.steps - before == (len(requests) if exact(either) else 1)


async def test_a_failed_call_of_a_running_reply_and_new_prompts_is_made_again_as_two(
    either: BatchedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call that advances a running reply and reads three newcomers' prompts fails
    once: the running reply goes on, the newcomers answer, and every sequence's KV holds
    exactly the tokens the engine counts for it."""
    failed: list[int] = []
    original = NativeContext.decode

    def decode(self: NativeContext, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        per_sequence = Counter(seq_id for seq_id, *_ in entries)
        generating = any(count == 1 for count in per_sequence.values())
        if not failed and generating and not all(logits for *_, logits in entries):
            failed.append(len(entries))
            raise DecodeFailedError(1)
        original(self, entries)

    monkeypatch.setattr(NativeContext, "decode", decode)
    running = ask(QUESTIONS[2], session="poem", max_tokens=40)
    pieces: list[str] = []
    started = asyncio.Event()

    async def run() -> None:
        async for piece in either.generate(running):
            pieces.append(piece)
            started.set()

    poem = asyncio.create_task(run())
    async with asyncio.timeout(LIMIT):
        await started.wait()
    newcomers = [ask(q, session=f"n{i}", max_tokens=8) for i, q in enumerate(QUESTIONS[:2])]
    async with arriving_together(either, newcomers) as tasks:
        replies = await asyncio.gather(*tasks)
        async with asyncio.timeout(LIMIT):
            await poem
    assert len("".join(pieces).split()) > 3  # the running reply went on
    assert all(text.strip() for text in replies)
    assert bool(failed) != exact(either)  # only the shared cache makes such a call
    engine = either.engine
    assert engine.busy_sequences() == 0
    ctx = engine._ctx
    assert ctx is not None
    for slot in engine.table.slots:
        held = ctx._lc.llama_memory_seq_pos_max(ctx.memory, slot.seq_id) + 1
        assert held == len(slot.tokens), f"sequence {slot.seq_id}"


async def test_newcomers_start_beside_running_replies_when_no_chunk_fits_their_call(
    model_path: Path,
) -> None:
    """With room for fewer prompt tokens a step than a chunk holds (here a limit of 2),
    newcomers still start while a reply runs: their chunks get calls of their own."""
    backend = BatchedBackend(model_path, n_ctx=512, parallel=4, resident=4, prefill_chunk=2,
                             n_threads=THREADS, n_threads_batch=THREADS)
    await backend.start()
    try:
        started = asyncio.Event()
        pieces: list[str] = []

        async def run() -> None:
            async for piece in backend.generate(ask(QUESTIONS[2], session="poem",
                                                    max_tokens=40)):
                pieces.append(piece)
                started.set()

        poem = asyncio.create_task(run())
        async with asyncio.timeout(LIMIT):
            await started.wait()
        async with arriving_together(backend, [ask(QUESTIONS[0], session="new")]) as tasks:
            replies = await asyncio.gather(*tasks)
            async with asyncio.timeout(LIMIT):
                await poem
        assert all(text.strip() for text in replies)
        assert backend.engine.stats.peak_batch == 2  # it generated beside the poem
        assert backend.engine.busy_sequences() == 0
    finally:
        await backend.stop()
    assert "".join(pieces).strip()


async def test_replies_agree_with_the_single_sequence_backend(
    engine: BatchedBackend, model_path: Path
) -> None:
    single = OneThreadLlama(model_path, n_ctx=512, cache_bytes=0)
    await single.start()
    try:
        expected = [await reply(single, ask(q)) for q in QUESTIONS[:2]]
    finally:
        await single.stop()
    assert await together(engine, [ask(q) for q in QUESTIONS[:2]]) == expected


async def test_a_banned_word_never_affects_another_sequence_in_the_batch(
    either: BatchedBackend,
) -> None:
    engine = either
    question = QUESTIONS[0]
    free = await reply(engine, ask(question, session="free"))
    assert "paris" in free.lower()  # the model's answer, so banning it changes something
    banned, unaffected = await together(engine, [
        ask(question, session="strict", banned=("Paris",)),
        ask(question, session="free"),
    ])
    assert "paris" not in banned.lower()
    assert unaffected == free if exact(engine) else "paris" in unaffected.lower()


async def test_a_grammar_applies_only_to_its_own_sequence(either: BatchedBackend) -> None:
    engine = either
    free = await reply(engine, ask(QUESTIONS[1], session="free"))
    constrained, unaffected = await together(engine, [
        ask("Is the sea blue?", session="strict", grammar=YES_NO),
        ask(QUESTIONS[1], session="free"),
    ])
    assert constrained in ("yes", "no")
    assert same_or_answered(engine, [unaffected], [free])
    assert unaffected not in ("yes", "no")


async def test_an_evicted_channel_re_evaluated_continues_as_a_resident_one(
    model_path: Path,
) -> None:
    first = ask("Name a colour.", session="x")
    backend = BatchedBackend(model_path, n_ctx=512, parallel=2, resident=2, kv_tokens=EXACT,
                             n_threads=THREADS, n_threads_batch=THREADS)
    await backend.start()
    try:
        answer = await reply(backend, first)
        second = ask(
            "Why do you like it?", session="x", history=(
                ChatMessage("user", "Name a colour."), ChatMessage("assistant", answer.strip())
            ),
        )
        stats = backend.engine.stats
        reused_before = stats.reused_tokens
        resident = await reply(backend, second)
        reused_resident = stats.reused_tokens - reused_before

        # Two other channels take both sequences, then x comes back to the same turn.
        await reply(backend, ask(QUESTIONS[0], session="y"))
        await reply(backend, ask(QUESTIONS[1], session="z"))
        assert backend.engine.table.resident("x") is None
        reused_before = stats.reused_tokens
        evicted = await reply(backend, second)
        reused_evicted = stats.reused_tokens - reused_before
    finally:
        await backend.stop()

    assert reused_resident > reused_evicted  # the resident turn really kept its KV
    assert stats.evictions >= 1
    assert evicted == resident
    assert resident.strip()


async def test_a_returning_channel_in_the_shared_cache_reads_only_its_new_message(
    either: BatchedBackend,
) -> None:
    """In the shared cache the reply's KV stays resident with the prompt's, so the next
    turn (which holds the reply as remembered) evaluates only what is new; with a stream
    per sequence the reply is read again, keeping replies identical to a re-read."""
    vocabulary = either.engine.model
    assert vocabulary is not None
    answer = await reply(either, ask(QUESTIONS[2], session="x", max_tokens=48))
    second = ask("Why do you like it?", session="x", history=(
        ChatMessage("user", QUESTIONS[2]), ChatMessage("assistant", answer.strip())))
    stats = either.engine.stats
    before = stats.prompt_tokens
    assert (await reply(either, second)).strip()
    read = stats.prompt_tokens - before
    answer_tokens = len(vocabulary.tokenize(answer.strip()))
    assert answer_tokens >= 30
    if exact(either):
        assert read > answer_tokens  # the reply again, and the new question
    else:
        assert read < answer_tokens  # the question and the chat format's few tokens


def state_bytes(backend: BatchedBackend, seq_id: int) -> int:
    """The size of sequence ``seq_id``'s saved state: a fixed part and the same bytes for
    each KV cell it holds (read while the engine is idle)."""
    ctx = backend.engine._ctx  # the engine's llama.cpp context; idle between replies
    assert ctx is not None
    return int(ctx._lc.llama_state_seq_get_size(ctx.ctx, seq_id))


async def test_a_sequence_taken_from_an_evicted_channel_holds_none_of_its_kv(
    model_path: Path,
) -> None:
    # Two sequences in the shared cache: x (another system prompt) and y, then z, a new
    # channel with y's system prompt, takes x's sequence and copies y's prompt KV.
    backend = BatchedBackend(model_path, n_ctx=512, parallel=2, resident=2,
                             n_threads=THREADS, n_threads_batch=THREADS)
    await backend.start()
    try:
        table = backend.engine.table
        other = GenerationRequest(messages=(
            ChatMessage("system", "Reply in one short sentence."),
            ChatMessage("user", "Which planet is the largest one in our solar system?")),
            temperature=0.0, max_tokens=20, session="x")
        await reply(backend, other)
        await reply(backend, ask(QUESTIONS[0], session="y"))
        x, y = table.resident("x"), table.resident("y")
        assert x is not None and y is not None
        # Two sequences of known length: the state's fixed part and its bytes per cell.
        sizes = {slot.seq_id: (len(slot.tokens), state_bytes(backend, slot.seq_id))
                 for slot in (x, y)}
        (n1, b1), (n2, b2) = sizes.values()
        per_cell = (b1 - b2) / (n1 - n2)
        fixed = b1 - per_cell * n1
        copies = backend.engine.stats.copies
        await reply(backend, ask(QUESTIONS[1], session="z"))
        z = table.resident("z")
        assert z is not None and z.seq_id == x.seq_id  # x was evicted for it
        assert backend.engine.stats.copies == copies + 1  # y's system prompt was copied
        held = (state_bytes(backend, z.seq_id) - fixed) / per_cell
    finally:
        await backend.stop()
    assert round(held) == len(z.tokens)  # its own cells only, none of x's conversation


async def test_cancelling_one_sequence_frees_it_and_the_others_finish(
    either: BatchedBackend,
) -> None:
    engine = either
    requests = [ask(q, session=f"c{i}", max_tokens=32) for i, q in enumerate(QUESTIONS[1:])]
    alone = [await reply(engine, r) for r in requests[1:]]

    async def read_two_then_close() -> int:
        stream = engine.generate(requests[0])
        pieces = [await anext(stream), await anext(stream)]
        await stream.aclose()
        return len(pieces)

    async with asyncio.timeout(LIMIT):
        read, *others = await asyncio.gather(
            read_two_then_close(), *(reply(engine, r) for r in requests[1:])
        )
    assert read == 2
    assert same_or_answered(engine, others, alone)
    assert engine.engine.busy_sequences() == 0
    assert (await reply(engine, requests[0])).strip()  # its sequence serves again


async def test_a_job_failing_at_admission_fails_only_itself(either: BatchedBackend) -> None:
    engine = either
    requests = [ask(q, session=f"c{i}") for i, q in enumerate(QUESTIONS[:2])]
    alone = [await reply(engine, r) for r in requests]
    bad_grammar = ask("Hello?", session="bad", grammar="root ::= (")
    too_long = ask("word " * 600, session="long")
    results = await asyncio.gather(
        outcome(engine, requests[0]), outcome(engine, bad_grammar),
        outcome(engine, too_long), outcome(engine, requests[1]),
    )
    assert isinstance(results[1], InferenceError)
    assert "grammar" in str(results[1])
    assert isinstance(results[2], ContextOverflowError)
    assert isinstance(results[0], str) and isinstance(results[3], str)
    assert same_or_answered(engine, [results[0], results[3]], alone)


async def test_a_job_failing_mid_generation_fails_only_itself(
    either: BatchedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = either
    requests = [ask(q, session=f"c{i}", max_tokens=24) for i, q in enumerate(QUESTIONS[1:3])]
    alone = [await reply(engine, r) for r in requests]
    calls = 0
    original = BannedWords.__call__

    def failing_filter(
        self: BannedWords, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError("filter broke")
        return original(self, input_ids, scores)

    monkeypatch.setattr(BannedWords, "__call__", failing_filter)
    doomed = ask(QUESTIONS[0], session="doomed", banned=("zebra",), max_tokens=24)
    pieces: list[str] = []

    async def run_doomed() -> InferenceError | None:
        try:
            async for piece in engine.generate(doomed):
                pieces.append(piece)
        except InferenceError as error:
            return error
        return None

    async with asyncio.timeout(LIMIT):
        error, *others = await asyncio.gather(
            run_doomed(), *(reply(engine, r) for r in requests)
        )
    assert isinstance(error, InferenceError)
    assert pieces  # it failed after it had started to answer
    assert same_or_answered(engine, others, alone)
    assert engine.engine.busy_sequences() == 0
    monkeypatch.setattr(BannedWords, "__call__", original)
    assert (await reply(engine, ask(QUESTIONS[0], session="after"))).strip()
