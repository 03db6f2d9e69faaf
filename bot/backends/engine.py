"""The continuous-batching loop: one worker thread, one llama.cpp context, many sequences.

Each step the worker

1. admits waiting jobs into free sequences (a returning channel keeps the resident KV
   of its earlier prompts and evaluates the rest; a new one may copy a shared prefix),
2. drops cancelled jobs,
3. evaluates the last sampled token of every generating sequence in one ``llama_decode``
   call and samples each sequence's next token with its own sampler chain,
4. evaluates one chunk of one newcomer's prompt in a second call, so a long prompt
   delays the others' next token by one chunk rather than by the whole prompt.

Prompt chunks get their own call because llama.cpp splits a mixed batch so that part of
a chunk would be computed token by token, with different rounding (see ``sessions``).

A job that fails (a bad grammar, a prompt too long, a failed decode or filter) ends
with an error for that job only; the worker carries on with the others.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from bot.backends.banning import BannedWords
from bot.backends.base import GenerationRequest
from bot.backends.native import DecodeError, NativeContext, NativeModel
from bot.backends.sampling import SequenceSampler
from bot.backends.sessions import Slot, SlotTable, next_chunk
from bot.backends.text_stream import StopTextStream
from bot.errors import InferenceError

log = logging.getLogger(__name__)

EventKind = Literal["text", "done", "error"]
Deliver = Callable[[EventKind, str], None]
"""Hands an event to the job's consumer; called from the worker thread."""

_DEFAULT_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed


@dataclass
class EngineStats:
    """Counters for tests and benchmarks (written by the worker only)."""

    steps: int = 0
    peak_batch: int = 0
    """The most sequences that generated in one decode call."""
    prompt_tokens: int = 0
    """Prompt tokens evaluated."""
    prompt_seconds: float = 0.0
    """Time spent evaluating them."""
    generated_tokens: int = 0
    """Tokens evaluated in generation steps (one per generating sequence per step)."""
    generate_seconds: float = 0.0
    """Time spent in those steps' decode calls."""
    reused_tokens: int = 0
    """Prompt tokens whose resident KV was kept instead."""
    evictions: int = 0
    copies: int = 0
    """Prefixes copied from another sequence instead of evaluated."""
    failures: int = 0


@dataclass(eq=False)
class EngineJob:
    """One generation as the worker sees it."""

    request: GenerationRequest
    deliver: Deliver
    cancelled: bool = False
    """Set by the consumer (any thread) when it stops reading; the worker drops the job."""
    serial: int = 0
    prompt: list[int] = field(default_factory=list)
    slot: Slot | None = None
    sampler: SequenceSampler | None = None
    evaluated: int = 0
    """Tokens of this sequence in the KV cache (prompt first, then generated ones)."""
    pending: int | None = None
    """A sampled token already shown, to be evaluated in the next step."""
    generated: int = 0
    max_new: int = 0
    text: StopTextStream = field(default_factory=StopTextStream)
    history: npt.NDArray[np.intc] = field(default_factory=lambda: np.zeros(0, dtype=np.intc))
    length: int = 0

    @property
    def prefilling(self) -> bool:
        return self.pending is None and self.evaluated < len(self.prompt)

    def seen(self) -> npt.NDArray[np.intc]:
        """Prompt and generated tokens so far (what a logits processor reads)."""
        return self.history[: self.length]

    def remember(self, token: int) -> None:
        self.history[self.length] = token
        self.length += 1


class BatchEngine:
    """The worker that owns the model; ``submit`` jobs from any thread.

    Args:
        model_path: the GGUF file.
        n_ctx: each sequence's context window in tokens.
        sequences: KV sequences (channels that stay resident), at least ``parallel``.
        n_threads: llama.cpp threads for a step of one sequence.
        n_threads_batch: llama.cpp threads for several sequences or a prompt chunk.
        prefill_chunk: prompt tokens evaluated per step while others are generating.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        sequences: int,
        n_threads: int,
        n_threads_batch: int,
        prefill_chunk: int = 64,
        n_batch: int = 512,
    ) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._n_threads_batch = n_threads_batch
        self._prefill_chunk = prefill_chunk
        self._n_batch = max(n_batch, sequences)
        self.table = SlotTable(sequences)
        self.model: NativeModel | None = None
        self._ctx: NativeContext | None = None
        self._cond = threading.Condition()
        self._inbox: deque[EngineJob] = deque()
        self._waiting: deque[EngineJob] = deque()
        self._active: list[EngineJob] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._serial = itertools.count(1)
        self._banned: dict[tuple[str, ...], BannedWords] = {}
        self.stats = EngineStats()

    # -- any thread -------------------------------------------------------------------

    def start(self) -> Future[None]:
        """Start the worker; the future resolves once the model is loaded."""
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name="cabot-batched", daemon=True
        )
        self._thread.start()
        return ready

    def stop(self) -> None:
        """Stop the worker (blocking until it has freed the model)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def submit(self, job: EngineJob) -> None:
        """Queue ``job``; it joins the running batch at the next step."""
        with self._cond:
            if self._stopping or self._thread is None or not self._thread.is_alive():
                raise InferenceError("The model is not loaded; start the backend first.")
            self._inbox.append(job)
            self._cond.notify()

    def wake(self) -> None:
        """Make the worker look at cancellations now."""
        with self._cond:
            self._cond.notify()

    @property
    def n_ctx_seq(self) -> int:
        return self._ctx.n_ctx_seq if self._ctx is not None else self._n_ctx

    def busy_sequences(self) -> int:
        """Sequences a job currently holds."""
        return sum(1 for s in self.table.slots if s.busy)

    # -- the worker -------------------------------------------------------------------

    def _main(self, ready: Future[None]) -> None:
        try:
            self.model = NativeModel(self._model_path)
            self._ctx = NativeContext(
                self.model,
                n_seqs=len(self.table.slots),
                n_ctx_seq=self._n_ctx,
                n_batch=self._n_batch,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads_batch,
            )
        except Exception as error:
            if self.model is not None:
                self.model.close()
            ready.set_exception(error)
            return
        log.info("loaded %s: %d sequences of %d tokens, %d/%d threads",
                 self._model_path.name, len(self.table.slots), self._ctx.n_ctx_seq,
                 self._n_threads, self._n_threads_batch)
        ready.set_result(None)
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._inbox or self._active
                           or (self._waiting and not self._active)
                           or self._any_cancelled_waiting()):
                    self._cond.wait()
                if self._stopping:
                    return
                self._waiting.extend(self._inbox)
                self._inbox.clear()
            try:
                self._drop_cancelled()
                self._admit()
                if self._active:
                    self._step()
            except Exception:  # a bug here must not leave jobs hanging forever
                log.exception("batched engine step failed")
                for job in list(self._active):
                    try:
                        self._fail(job, "The model failed while generating; try again.",
                                   forget=True)
                    except Exception:
                        log.exception("could not clean up after a failed step")
                        self._active.remove(job)
                        job.deliver("error", "The model failed while generating; try again.")

    def _any_cancelled_waiting(self) -> bool:
        return any(job.cancelled for job in self._waiting)

    def _shutdown(self) -> None:
        for job in [*self._active, *self._waiting, *self._inbox]:
            if job.sampler is not None:
                job.sampler.close()
            job.deliver("error", "cabot is shutting down; the reply was stopped.")
        self._active.clear()
        self._waiting.clear()
        self._inbox.clear()
        if self._ctx is not None:
            self._ctx.close()
        if self.model is not None:
            self.model.close()

    # -- admission ----------------------------------------------------------------------

    def _admit(self) -> None:
        while self._waiting:
            job = self._waiting[0]
            if not job.prompt:
                try:
                    self._prepare(job)
                except InferenceError as error:
                    self._waiting.popleft()
                    self.stats.failures += 1
                    job.deliver("error", str(error))
                    continue
                except Exception as error:
                    log.exception("preparing a generation failed")
                    self._waiting.popleft()
                    self.stats.failures += 1
                    job.deliver("error", f"The model could not start this reply "
                                         f"({type(error).__name__}); try again.")
                    continue
            lease = self.table.acquire(job.request.session, job.prompt)
            if lease is None:
                return  # every sequence is busy; the job waits for one to finish
            self._waiting.popleft()
            assert self._ctx is not None
            if lease.evicted is not None:
                self.stats.evictions += 1
                log.debug("evicted %s from sequence %d", lease.evicted, lease.slot.seq_id)
            self.stats.reused_tokens += lease.keep
            if lease.source is not None:
                self.stats.copies += 1
                self._ctx.copy(lease.source.seq_id, lease.slot.seq_id)
            self._ctx.forget(lease.slot.seq_id, lease.keep)
            job.slot = lease.slot
            job.evaluated = lease.keep
            job.serial = next(self._serial)
            try:
                job.sampler = self._sampler_for(job)
            except Exception as error:
                if not isinstance(error, InferenceError):
                    log.exception("building a sampler failed")
                self.table.release(lease.slot)
                self.stats.failures += 1
                job.deliver("error", str(error) if isinstance(error, InferenceError) else
                            f"The model could not start this reply ({type(error).__name__}).")
                continue
            self._active.append(job)

    def _prepare(self, job: EngineJob) -> None:
        """Tokenize the prompt and check that it fits (done once per job)."""
        assert self.model is not None
        request = job.request
        try:
            prompt = self.model.chat_prompt(request.messages)
        except Exception as error:  # jinja raises for messages the template rejects
            raise InferenceError(
                f"The model's chat template rejected the conversation ({error})."
            ) from None
        limit = self.n_ctx_seq
        if len(prompt) >= limit:
            raise InferenceError(
                "The prompt does not fit the model's context window (Requested tokens "
                f"({len(prompt)}) exceed context window of {limit})."
            )
        room = limit - len(prompt)
        job.max_new = min(request.max_tokens, room) if request.max_tokens > 0 else room
        job.prompt = prompt
        job.text = StopTextStream(request.stop)
        job.history = np.zeros(len(prompt) + job.max_new + 1, dtype=np.intc)
        for token in prompt:
            job.remember(token)

    def _sampler_for(self, job: EngineJob) -> SequenceSampler:
        assert self.model is not None
        request = job.request
        processor = self._banned_words(tuple(sorted(request.banned))) if request.banned else None
        return SequenceSampler(
            request,
            vocab=self.model.vocab,
            n_vocab=self.model.n_vocab,
            history=job.seen,
            processor=processor,
            seed=request.seed if request.seed is not None else _DEFAULT_SEED,
        )

    def _banned_words(self, banned: tuple[str, ...]) -> BannedWords:
        assert self.model is not None
        if banned not in self._banned:
            if len(self._banned) > 32:
                self._banned.clear()
            self._banned[banned] = BannedWords(
                banned, self.model.vocab_texts(), self.model.detokenize
            )
        return self._banned[banned]

    # -- one step -----------------------------------------------------------------------

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            job.deliver("done", "")
        for job in [j for j in self._active if j.cancelled]:
            self._finish(job)

    def _step(self) -> None:
        self.stats.steps += 1
        feeding = [job for job in self._active if job.pending is not None]
        if feeding:
            self.stats.peak_batch = max(self.stats.peak_batch, len(feeding))
            self._decode_generating(feeding)
        prefilling = [job for job in self._active if job.prefilling and not job.cancelled]
        if prefilling:
            job = min(prefilling, key=lambda j: j.serial)
            # Alone, a prompt is evaluated at full speed; beside running streams, in chunks.
            others = any(j.pending is not None for j in self._active)
            self._prefill(job, self._prefill_chunk if others else self._n_batch)

    def _decode_generating(self, jobs: list[EngineJob]) -> None:
        assert self._ctx is not None
        entries = []
        for job in jobs:
            assert job.slot is not None and job.pending is not None
            entries.append((job.slot.seq_id, job.evaluated, job.pending, True))
        started = time.perf_counter()
        try:
            self._ctx.decode(entries)
            self.stats.generate_seconds += time.perf_counter() - started
            self.stats.generated_tokens += len(entries)
        except DecodeError as error:
            log.warning("a batch of %d failed (%s); retrying each sequence alone",
                        len(jobs), error)
            for job in jobs:
                assert job.slot is not None and job.pending is not None
                self._ctx.forget(job.slot.seq_id, job.evaluated)
                try:
                    self._ctx.decode([(job.slot.seq_id, job.evaluated, job.pending, True)])
                except DecodeError as alone:
                    self._fail(job, f"The model failed while generating ({alone}).", forget=True)
                    continue
                self._advance(job, 0)
            return
        for index, job in enumerate(jobs):
            self._advance(job, index)

    def _advance(self, job: EngineJob, index: int) -> None:
        """The pending token was evaluated at batch ``index``: sample the next one."""
        assert job.slot is not None and job.pending is not None
        job.slot.tokens.append(job.pending)
        job.evaluated += 1
        job.pending = None
        self._sample(job, index)

    def _prefill(self, job: EngineJob, limit: int) -> None:
        assert self._ctx is not None and job.slot is not None
        start = job.evaluated
        size = next_chunk(len(job.prompt) - start, min(limit, self._n_batch))
        chunk = job.prompt[start : start + size]
        started = time.perf_counter()
        try:
            self._ctx.decode_chunk(job.slot.seq_id, start, chunk)
        except DecodeError as error:
            self._fail(job, f"The model failed while reading the prompt ({error}).", forget=True)
            return
        self.stats.prompt_seconds += time.perf_counter() - started
        self.stats.prompt_tokens += size
        job.slot.tokens.extend(chunk)
        job.slot.exact = len(job.slot.tokens)
        job.evaluated += size
        if job.evaluated == len(job.prompt):
            self._sample(job, size - 1)

    def _sample(self, job: EngineJob, index: int) -> None:
        assert self._ctx is not None and self.model is not None and job.sampler is not None
        try:
            token = job.sampler.sample(self._ctx.ctx, index)
        except InferenceError as error:
            self._fail(job, str(error))
            return
        if self.model.is_end(token):
            self._finish(job)
            return
        job.remember(token)
        job.generated += 1
        text = job.text.feed(self.model.piece(token))
        if text:
            job.deliver("text", text)
        if job.text.stopped or job.generated >= job.max_new:
            self._finish(job)
            return
        job.pending = token

    # -- endings ------------------------------------------------------------------------

    def _end(self, job: EngineJob) -> None:
        if job in self._active:
            self._active.remove(job)
        if job.sampler is not None:
            job.sampler.close()
            job.sampler = None

    def _finish(self, job: EngineJob) -> None:
        self._end(job)
        rest = job.text.finish() if not job.cancelled else ""
        if job.slot is not None:
            self.table.release(job.slot)
        if rest:
            job.deliver("text", rest)
        job.deliver("done", "")

    def _fail(self, job: EngineJob, message: str, *, forget: bool = False) -> None:
        self.stats.failures += 1
        self._end(job)
        if job.slot is not None:
            if forget:
                # The failed sequence's KV is unknown: empty it so no one reuses it.
                assert self._ctx is not None
                self._ctx.forget(job.slot.seq_id)
                self.table.forget(job.slot)
            self.table.release(job.slot)
        job.deliver("error", message)
