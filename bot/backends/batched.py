"""The batched llama.cpp backend: many channels share one model and decode together.

Requests from different channels run as sequences of one llama.cpp context and are
evaluated in the same ``llama_decode`` calls (continuous batching, see ``engine``), each
with its own sampler chain, so two channels with different profiles share a batch
without affecting each other. A channel's conversation stays resident in its sequence
between turns; a returning channel evaluates only its new tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

from bot.backends.base import LOCAL_SAMPLING, ChatMessage, GenerationRequest
from bot.backends.bridge import ThreadBridge
from bot.backends.chat_format import AUTO
from bot.backends.engine import BatchEngine
from bot.backends.engine_job import EngineJob
from bot.backends.native import KV_TYPES
from bot.backends.sessions import kv_budget
from bot.backends.token_count import TokenCounter
from bot.errors import ConfigError, InferenceError

log = logging.getLogger(__name__)


class BatchedBackend:
    """Continuous batching over llama-cpp-python's low-level API.

    Args:
        model_path: the GGUF file.
        n_ctx: each channel's context window in tokens.
        parallel: requests generated at once (the queue's ``max_parallel``).
        resident: channels whose KV stays in memory between turns (at least ``parallel``).
        kv_tokens: KV cache cells the resident channels and running replies share
            (``CABOT_KV_TOKENS``, at least ``n_ctx``; None: 704 per resident channel, or
            ``n_ctx`` if larger); the least recently used idle channel is evicted when a
            reply needs room. 0: each resident channel reserves ``n_ctx`` cells of its
            own, and replies are bit-identical to the single engine's.
        kv_type: ``CABOT_KV_TYPE``: f16, or q8_0 (keys in 8 bits: a quarter less).
        flash_attn: llama.cpp's flash attention (``CABOT_FLASH_ATTN``), off by default. Its
            CPU kernel computes a prompt chunk of fewer than 64 tokens (a returning
            channel's new message) query by query, 2.5x slower than the plain attention
            on an AVX-512 CPU (a 39-token chunk among 8 resident conversations: 402 ms
            against 304), and generation steps of 8 sequences there 20% slower; it gained
            14% on those steps on an AMD EPYC (``on`` there). Off, replies stay
            bit-identical between the exact layout (``kv_tokens`` 0) and the single
            engine; it cannot read a q8_0 cache right in this llama.cpp.
        n_threads: llama.cpp threads (default: every CPU, as the single-sequence engine).
        n_threads_batch: llama.cpp threads for several sequences at once or a prompt chunk
            (default: ``n_threads``).
        prefill_chunk: prompt tokens a newcomer evaluates per step while others generate.
        chat_format: ``CABOT_CHAT_FORMAT``: how messages become a prompt (``chat_format``).
    """

    name = "llama.cpp batched"

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        parallel: int = 4,
        resident: int = 8,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        prefill_chunk: int = 64,
        chat_format: str = AUTO,
        kv_tokens: int | None = None,
        kv_type: str = "f16",
        flash_attn: bool = False,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        budget = kv_budget(kv_tokens, n_ctx, max(resident, parallel))
        if budget is not None and budget < n_ctx:
            raise ConfigError(
                f"CABOT_KV_TOKENS ({budget}) is smaller than one conversation's context "
                f"window, CABOT_N_CTX ({n_ctx}); raise it to at least {n_ctx} (or 0 for "
                "a full window per resident channel)."
            )
        if kv_type not in KV_TYPES:
            raise ConfigError(
                f"CABOT_KV_TYPE is {kv_type!r}; use one of {', '.join(KV_TYPES)}."
            )
        if flash_attn and kv_type != "f16":
            raise ConfigError(
                f"CABOT_FLASH_ATTN=on with CABOT_KV_TYPE={kv_type}: llama.cpp's flash "
                "attention reads a quantized KV cache wrong on this model; set "
                "CABOT_FLASH_ATTN=auto or CABOT_KV_TYPE=f16."
            )
        self.max_parallel = parallel
        self.enforces = LOCAL_SAMPLING
        self.engine = BatchEngine(
            model_path,
            n_ctx=n_ctx,
            sequences=max(resident, parallel),
            n_threads=n_threads or os.cpu_count() or 1,
            n_threads_batch=n_threads_batch or n_threads or os.cpu_count() or 1,
            prefill_chunk=prefill_chunk,
            chat_format=chat_format,
            kv_tokens=budget,
            kv_type=kv_type,
            flash_attn=flash_attn,
        )
        self._started = False
        self._counter = TokenCounter()

    @property
    def n_ctx(self) -> int:
        return self.engine.n_ctx_seq

    async def start(self) -> None:
        """Load the model in the engine's worker thread."""
        try:
            model = await asyncio.wrap_future(self.engine.start())
        except InferenceError:
            raise
        except (ValueError, OSError, RuntimeError) as error:
            raise InferenceError(
                f"Cannot start the batched engine ({error}); check CABOT_MODEL and lower "
                "CABOT_KV_TOKENS, CABOT_PARALLEL or CABOT_N_CTX if memory is short."
            ) from None
        self._started = True
        self._counter.open(lambda text: len(model.tokenize(text)))

    async def stop(self) -> None:
        """Stop the worker; running generations end with an error."""
        self._counter.close()
        if self._started:
            self._started = False
            await asyncio.get_running_loop().run_in_executor(None, self.engine.stop)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``, each text tokenized once (see ``TokenCounter``).

        Tokenizing reads only the vocabulary: safe beside the worker's decoding.
        """
        return self._counter(text)

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The tokens the model reads for ``messages`` (what ``generate`` evaluates)."""
        if not self._started or self.engine.model is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        return self.engine.model.chat_prompt(messages)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator frees its sequence at the next step."""
        if not self._started:
            raise InferenceError("The model is not loaded; start the backend first.")
        bridge = ThreadBridge(on_cancel=self.engine.wake)
        self.engine.submit(EngineJob(request, bridge))
        async with contextlib.aclosing(bridge.pieces()) as pieces:
            async for piece in pieces:
                yield piece
