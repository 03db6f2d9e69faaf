"""The batched engine's worker: one thread, one llama.cpp context, many sequences.

The worker loads the model, then runs steps of continuous batching (``continuous_batch``)
for as long as a job waits or runs, and sleeps otherwise. Jobs arrive from any thread
through ``submit``; each job's text and its end or typed error go back through the job's
``ThreadBridge``. A job that fails ends alone; the worker carries on with the others.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from bot.backends.chat_format import AUTO
from bot.backends.continuous_batch import ContinuousBatch
from bot.backends.engine_job import EngineJob, EngineStats
from bot.backends.native import NativeContext, NativeModel, trained_window
from bot.backends.sessions import SlotTable
from bot.errors import InferenceError

log = logging.getLogger(__name__)


class BatchEngine:
    """The worker that owns the model; ``submit`` jobs from any thread.

    Args:
        model_path: the GGUF file.
        n_ctx: each sequence's context window in tokens.
        sequences: KV sequences (channels that stay resident), at least ``parallel``.
        n_threads: llama.cpp threads for a step of one sequence.
        n_threads_batch: llama.cpp threads for several sequences or a prompt chunk.
        prefill_chunk: prompt tokens evaluated per step while others are generating.
        chat_format: ``CABOT_CHAT_FORMAT`` (see ``chat_format``).
        kv_tokens: KV cells every sequence shares (``CABOT_KV_TOKENS``), or None for a
            full ``n_ctx`` stream per sequence.
        kv_type: ``CABOT_KV_TYPE``: f16 or q8_0.
        flash_attn: ``CABOT_FLASH_ATTN``: llama.cpp's flash attention.
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
        chat_format: str = AUTO,
        kv_tokens: int | None = None,
        kv_type: str = "f16",
        flash_attn: bool = False,
    ) -> None:
        self._model_path = model_path
        self._chat_format = chat_format
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._n_threads_batch = n_threads_batch
        self._prefill_chunk = prefill_chunk
        self._n_batch = max(n_batch, sequences)
        self._kv_tokens = kv_tokens
        self._kv_type = kv_type
        self.flash_attn = flash_attn
        self.table = SlotTable(sequences, budget=kv_tokens)
        self.model: NativeModel | None = None
        self._ctx: NativeContext | None = None
        self._cond = threading.Condition()
        self._inbox: deque[EngineJob] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = EngineStats()

    # -- any thread -------------------------------------------------------------------

    def start(self) -> Future[NativeModel]:
        """Start the worker; the future resolves to the model once it is loaded."""
        ready: Future[NativeModel] = Future()
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

    def _main(self, ready: Future[NativeModel]) -> None:
        model: NativeModel | None = None
        try:
            model = NativeModel(self._model_path, chat_format=self._chat_format)
            ctx = NativeContext(
                model,
                n_seqs=len(self.table.slots),
                n_ctx_seq=trained_window(self._model_path, self._n_ctx, model.n_ctx_train),
                n_batch=self._n_batch,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads_batch,
                kv_tokens=self._kv_tokens,
                kv_type=self._kv_type,
                flash_attn=self.flash_attn,
            )
        except Exception as error:
            if model is not None:
                model.close()
            ready.set_exception(error)
            return
        self.model, self._ctx = model, ctx
        log.info("loaded %s: %d sequences of up to %d tokens sharing %d %s KV cells%s, "
                 "%d/%d threads, flash attention %s", self._model_path.name,
                 len(self.table.slots), ctx.n_ctx_seq, ctx.n_cells, self._kv_type,
                 "" if self._kv_tokens else " (one stream each)",
                 self._n_threads, self._n_threads_batch, "on" if self.flash_attn else "off")
        batch = ContinuousBatch(model, ctx, self.table, self.stats,
                                prefill_chunk=self._prefill_chunk)
        ready.set_result(model)
        try:
            self._loop(batch)
        finally:
            batch.close(also=self._inbox)
            self._inbox.clear()
            ctx.close()
            model.close()

    def _loop(self, batch: ContinuousBatch) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._inbox or batch.has_work()):
                    self._cond.wait()
                if self._stopping:
                    return
                batch.add(self._inbox)
                self._inbox.clear()
            try:
                batch.step()
            except Exception:  # a bug here must not leave jobs hanging forever
                log.exception("batched engine step failed")
                batch.fail_running()
