"""One step of continuous batching: admission, decoding, sampling and endings of jobs.

``ContinuousBatch`` is the batched engine's state between steps (see ``engine`` for the
worker thread that runs it). Each ``step``

1. drops cancelled jobs,
2. admits waiting jobs into free sequences (a returning channel keeps the resident KV
   of its earlier prompts and evaluates the rest; a new one may copy a shared prefix),
3. evaluates the last sampled token of every generating sequence and newcomers' prompt
   chunks, oldest first, in one ``llama_decode`` call: beside running streams, what fills
   the rest of the micro-batch their tokens start (``sessions.shared_chunks``), so a long
   prompt delays the others' next token by part of a pass rather than by the whole
   prompt, and newcomers that only need their last few tokens evaluated (a prefix kept
   or copied) all start in the call that also advances everyone else,
4. samples each sequence's next token with its own sampler chain.

That is the shared KV cache, the default. With a KV stream per sequence, llama.cpp
splits a batch of several sequences into equal parts, so part of a chunk would be
computed token by token, with different rounding: there the generating tokens get one
call and one newcomer's chunk a second, and a reply is identical alone or in a batch
(where the CPU's kernels round a batch as they round one token: `NativeContext`).

A job that fails (a bad grammar, a prompt too long, a failed decode or filter) ends
with its typed error for that job only; the others carry on.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable

import numpy as np

from bot.backends.banning import BannedWordsCache
from bot.backends.engine_job import EngineJob, EngineStats
from bot.backends.native import NativeContext, NativeModel
from bot.backends.sampling import SequenceSampler
from bot.backends.sessions import Slot, SlotTable, next_chunk, shared_chunks
from bot.backends.text_stream import StopTextStream
from bot.errors import (
    ContextOverflowError,
    DecodeFailedError,
    InferenceError,
    JobCancelledError,
)

log = logging.getLogger(__name__)

DEFAULT_SEED = 0xFFFFFFFF  # LLAMA_DEFAULT_SEED: llama.cpp picks a random seed


class ContinuousBatch:
    """The jobs sharing one llama.cpp context, advanced one ``step`` at a time.

    Used by the engine's worker thread only.

    Args:
        model: the loaded model.
        ctx: its context, with a sequence per slot of ``table``.
        table: which conversation lives in which sequence.
        stats: counters to update.
        prefill_chunk: prompt tokens a newcomer evaluates per step while others generate.
    """

    def __init__(
        self,
        model: NativeModel,
        ctx: NativeContext,
        table: SlotTable,
        stats: EngineStats,
        *,
        prefill_chunk: int,
    ) -> None:
        self._model = model
        self._ctx = ctx
        self._table = table
        self._stats = stats
        self._prefill_chunk = prefill_chunk
        self._waiting: deque[EngineJob] = deque()
        self._active: list[EngineJob] = []
        self._serial = itertools.count(1)
        self._waited = False
        """The first waiting job already counted as waiting for room."""
        self._banned = BannedWordsCache(lambda: model.vocab_texts, model.detokenize)

    def has_work(self) -> bool:
        """Whether a job waits or runs (a step would do something)."""
        return bool(self._active or self._waiting)

    def add(self, jobs: Iterable[EngineJob]) -> None:
        """Queue ``jobs``; they are admitted in order as sequences free up."""
        self._waiting.extend(jobs)

    def step(self) -> None:
        """Drop cancelled jobs, admit waiting ones, and advance every running job."""
        self._drop_cancelled()
        self._admit()
        if self._active:
            self._advance_all()

    def fail_running(self) -> None:
        """A step failed unexpectedly: end every running job with an error."""
        message = "The model failed while generating; try again."
        for job in list(self._active):
            try:
                self._fail(job, InferenceError(message), forget=True)
            except Exception:
                log.exception("could not clean up after a failed step")
                if job in self._active:
                    self._active.remove(job)
                job.events.fail(InferenceError(message))

    def close(self, also: Iterable[EngineJob]) -> None:
        """End every job (and ``also`` these, not yet added): cabot is shutting down."""
        for job in [*self._active, *self._waiting, *also]:
            if job.sampler is not None:
                job.sampler.close()
            job.events.fail(JobCancelledError("cabot is shutting down; the reply was stopped."))
        self._active.clear()
        self._waiting.clear()

    # -- admission ----------------------------------------------------------------------

    def _admit(self) -> None:
        while self._waiting:
            job = self._waiting[0]
            if not job.prompt:
                try:
                    self._prepare(job)
                except Exception as error:
                    self._waiting.popleft()
                    self._reject(job, error, "preparing a generation failed", "; try again")
                    continue
            lease = self._table.acquire(job.request.session, job.prompt, job.max_new)
            if lease is None:
                # Every sequence is busy or the KV budget is held by running jobs: the
                # job waits for one to finish.
                if not self._waited:
                    self._stats.kv_waits += 1
                    self._waited = True
                return
            self._waiting.popleft()
            self._waited = False
            for freed in lease.freed:
                self._ctx.forget(freed.seq_id)
            self._stats.evictions += len(lease.freed) + (lease.evicted is not None)
            if lease.evicted is not None:
                log.debug("evicted %s from sequence %d", lease.evicted, lease.slot.seq_id)
            keep = lease.keep
            if lease.source is not None:
                # A copy adds the source's cells to what the sequence holds: drop all of
                # that first, or the cells of the conversation evicted from it would stay
                # at the copied positions, read by this reply.
                self._ctx.forget(lease.slot.seq_id)
                self._ctx.copy(lease.source.seq_id, lease.slot.seq_id)
            if not self._ctx.forget(lease.slot.seq_id, keep):
                # A recurrent model's state cannot be cut back to a prefix: start afresh.
                self._ctx.forget(lease.slot.seq_id)
                self._table.restart(lease.slot)
                keep = 0
            elif lease.source is not None:
                self._stats.copies += 1
            self._stats.reused_tokens += keep
            job.slot = lease.slot
            job.evaluated = keep
            job.serial = next(self._serial)
            try:
                job.sampler = self._sampler_for(job)
            except Exception as error:
                self._release(lease.slot)
                self._reject(job, error, "building a sampler failed")
                continue
            self._active.append(job)
            self._stats.peak_kv_tokens = max(self._stats.peak_kv_tokens, self._table.held())

    def _reject(self, job: EngineJob, error: Exception, what: str, advice: str = "") -> None:
        """``job`` could not start: its own error, or a sentence naming an unexpected one."""
        self._stats.failures += 1
        if not isinstance(error, InferenceError):
            log.error(what, exc_info=error)
            error = InferenceError(
                f"The model could not start this reply ({type(error).__name__}){advice}."
            )
        job.events.fail(error)

    def _prepare(self, job: EngineJob) -> None:
        """Tokenize the prompt and check that it fits (done once per job)."""
        request = job.request
        prompt = self._model.chat_prompt(request.messages)
        limit = self._ctx.n_ctx_seq
        if len(prompt) >= limit:
            raise ContextOverflowError(
                "The prompt does not fit the model's context window (Requested tokens "
                f"({len(prompt)}) exceed context window of {limit})."
            )
        room = limit - len(prompt)
        job.max_new = min(request.max_tokens, room) if request.max_tokens > 0 else room
        if not self._table.fits(len(prompt) + job.max_new):
            raise ContextOverflowError(
                f"The prompt and its reply room ({len(prompt) + job.max_new} tokens) do not "
                f"fit the KV cache ({self._table.budget} tokens); raise CABOT_KV_TOKENS."
            )
        job.prompt = prompt
        chat = self._model.chat
        job.text = StopTextStream((*request.stop, *chat.stop), strip_leading=chat.strip_leading)
        job.history = np.zeros(len(prompt) + job.max_new + 1, dtype=np.intc)
        for token in prompt:
            job.remember(token)

    def _sampler_for(self, job: EngineJob) -> SequenceSampler:
        request = job.request
        return SequenceSampler(
            request,
            vocab=self._model.vocab,
            n_vocab=self._model.n_vocab,
            history=job.seen,
            processor=self._banned.get(request.banned) if request.banned else None,
            seed=request.seed if request.seed is not None else DEFAULT_SEED,
        )

    # -- one step -----------------------------------------------------------------------

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            job.events.finish()
        for job in [j for j in self._active if j.cancelled]:
            self._finish(job)

    def _advance_all(self) -> None:
        self._stats.steps += 1
        feeding = [job for job in self._active if job.pending is not None]
        if self._ctx.unified:
            prefilling = sorted((job for job in self._active
                                 if job.prefilling and not job.cancelled),
                                key=lambda j: j.serial)
            if prefilling:
                self._decode_together(feeding, prefilling)
                return
        self._decode_apart(feeding)

    def _decode_apart(self, feeding: list[EngineJob]) -> None:
        """Two calls: the generating sequences' tokens, then one chunk of the oldest
        newcomer's prompt."""
        if feeding:
            self._decode_generating(feeding)
        prefilling = [job for job in self._active if job.prefilling and not job.cancelled]
        if prefilling:
            job = min(prefilling, key=lambda j: j.serial)
            # Alone, a prompt is evaluated at full speed; beside running streams, in chunks.
            others = any(j.pending is not None for j in self._active)
            self._prefill(job, self._prefill_chunk if others else self._ctx.n_batch)

    def _decode_together(self, feeding: list[EngineJob], prefilling: list[EngineJob]) -> None:
        """One call: every generating sequence's token and newcomers' prompt chunks.

        Beside running streams the chunks hold at most ``prefill_chunk`` tokens in all,
        within the micro-batch the streams' tokens start (the oldest newcomer first);
        alone, as many as a batch holds (`shared_chunks`).
        """
        room = self._ctx.n_batch - len(feeding)
        limit = min(self._prefill_chunk, room) if feeding else room
        sizes = shared_chunks([len(job.prompt) - job.evaluated for job in prefilling],
                              beside=len(feeding), limit=limit, ubatch=self._ctx.n_ubatch)
        entries = _generating_entries(feeding)
        chunks = list(zip(prefilling, sizes, strict=False))
        for job, size in chunks:
            assert job.slot is not None
            start = job.evaluated
            last = start + size == len(job.prompt)
            entries.extend((job.slot.seq_id, start + i, job.prompt[start + i],
                            last and i == size - 1) for i in range(size))
        if not chunks:  # no room beside the streams (a batch nearly full of them)
            self._decode_apart(feeding)
            return
        started = time.perf_counter()
        try:
            self._ctx.decode(entries)
        except DecodeFailedError as error:
            # Compute it as two calls, each with its own handling of a failure (retrying
            # the generating sequences alone, failing the newcomer), from clean KV.
            for job in [*feeding, *(job for job, _ in chunks)]:
                assert job.slot is not None
                if not self._ctx.forget(job.slot.seq_id, job.evaluated):
                    doing = "generating" if job.pending is not None else "reading the prompt"
                    self._fail(job, DecodeFailedError(error.code, doing), forget=True)
            self._decode_apart([job for job in feeding if job in self._active])
            return
        elapsed = time.perf_counter() - started
        prompt = len(entries) - len(feeding)
        if feeding and prompt:
            self._stats.mixed_seconds += elapsed
        elif feeding:
            self._stats.generate_seconds += elapsed
        else:
            self._stats.prompt_seconds += elapsed
        self._stats.generated_tokens += len(feeding)
        self._stats.prompt_tokens += prompt
        if feeding:
            self._stats.peak_batch = max(self._stats.peak_batch, len(feeding))
        for index, job in enumerate(feeding):
            self._advance(job, index)
        index = len(feeding)
        for job, size in chunks:
            index += size
            self._chunk_done(job, size, index - 1)

    def _decode_generating(self, jobs: list[EngineJob]) -> None:
        self._stats.peak_batch = max(self._stats.peak_batch, len(jobs))
        entries = _generating_entries(jobs)
        started = time.perf_counter()
        try:
            self._ctx.decode(entries)
            self._stats.generate_seconds += time.perf_counter() - started
            self._stats.generated_tokens += len(entries)
        except DecodeFailedError as error:
            log.warning("a batch of %d failed (code %d); retrying each sequence alone",
                        len(jobs), error.code)
            for job in jobs:
                assert job.slot is not None and job.pending is not None
                if not self._ctx.forget(job.slot.seq_id, job.evaluated):
                    self._fail(job, error, forget=True)
                    continue
                try:
                    self._ctx.decode([(job.slot.seq_id, job.evaluated, job.pending, True)])
                except DecodeFailedError as alone:
                    self._fail(job, alone, forget=True)
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
        assert job.slot is not None
        start = job.evaluated
        size = next_chunk(len(job.prompt) - start, min(limit, self._ctx.n_batch))
        chunk = job.prompt[start : start + size]
        started = time.perf_counter()
        try:
            self._ctx.decode_chunk(job.slot.seq_id, start, chunk)
        except DecodeFailedError as error:
            self._fail(job, DecodeFailedError(error.code, "reading the prompt"), forget=True)
            return
        self._stats.prompt_seconds += time.perf_counter() - started
        self._stats.prompt_tokens += size
        self._chunk_done(job, size, size - 1)

    def _chunk_done(self, job: EngineJob, size: int, last: int) -> None:
        """``size`` more prompt tokens are in the KV (the last at batch index ``last``)."""
        assert job.slot is not None
        start = job.evaluated
        job.slot.tokens.extend(job.prompt[start : start + size])
        job.slot.exact = len(job.slot.tokens)
        job.evaluated += size
        if job.evaluated == len(job.prompt):
            self._sample(job, last)

    def _sample(self, job: EngineJob, index: int) -> None:
        assert job.sampler is not None
        try:
            token = job.sampler.sample(self._ctx.ctx, index)
        except InferenceError as error:
            self._fail(job, error)
            return
        if self._model.is_end(token):
            self._finish(job)
            return
        job.remember(token)
        job.generated += 1
        text = job.text.feed(self._model.piece(token))
        if text:
            job.events.send(text)
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

    def _release(self, slot: Slot) -> None:
        """The job on ``slot`` ended: keep its KV for the channel's next turn.

        In the shared cache all of it, the reply too, as llama-server's prompt cache
        does: the next prompt holds the reply as remembered, so a returning channel
        reads only its new message (where the remembered text tokenizes as generated).
        With a stream per sequence only the prompt's: there a resident channel's reply
        must stay bit-identical to the one it gets re-read from text (`bot.backends.
        sessions`).
        """
        if self._ctx.unified:
            slot.exact = len(slot.tokens)
        if not self._ctx.forget(slot.seq_id, slot.exact):
            # A recurrent state holds the reply too and cannot be cut back: the slot keeps
            # nothing (and another idle slot holding this channel keeps it).
            self._ctx.forget(slot.seq_id)
            self._table.forget(slot)
        self._table.release(slot)

    def _finish(self, job: EngineJob) -> None:
        self._end(job)
        rest = job.text.finish() if not job.cancelled else ""
        if job.slot is not None:
            self._release(job.slot)
        if rest:
            job.events.send(rest)
        job.events.finish()

    def _fail(self, job: EngineJob, error: InferenceError, *, forget: bool = False) -> None:
        self._stats.failures += 1
        self._end(job)
        if job.slot is not None:
            if forget:
                # The failed sequence's KV is unknown: empty it so no one reuses it.
                self._ctx.forget(job.slot.seq_id)
                self._table.forget(job.slot)
            self._release(job.slot)
        job.events.fail(error)


def _generating_entries(jobs: list[EngineJob]) -> list[tuple[int, int, int, bool]]:
    """Each generating job's pending token at its next position, wanting logits."""
    entries = []
    for job in jobs:
        assert job.slot is not None and job.pending is not None
        entries.append((job.slot.seq_id, job.evaluated, job.pending, True))
    return entries
