"""The in-process llama.cpp backend: one worker thread owns the model.

The prompt is built by the same ``Vocabulary`` (chat format and control-token guard) as
the batched engine's, as tokens, and generated with ``Llama.create_completion``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.backends.banning import BannedWordsCache
from bot.backends.base import LOCAL_SAMPLING, ChatMessage, GenerationRequest
from bot.backends.bridge import ThreadBridge
from bot.backends.chat_format import AUTO
from bot.backends.native import Vocabulary, trained_window
from bot.backends.token_count import TokenCounter
from bot.errors import ContextOverflowError, InferenceError

log = logging.getLogger(__name__)

OVERFLOW = (
    "The prompt does not fit the model's context window; try /forget or a shorter message."
)
"""What a reply too long for the context window fails with (refused here or by llama.cpp)."""


def prompt_cache(capacity: int) -> Any:
    """llama-cpp-python's RAM cache of prompt states, held to ``capacity`` bytes.

    A saved state carries the logits of up to ``n_batch`` tokens (100 MiB on SmolLM2's
    49,152-token vocabulary) besides its KV, and ``LlamaRAMCache`` counts only the KV:
    eight resident conversations took the process to 2.1 GiB under a 256 MiB capacity.
    ``Llama`` evaluates the last token again after loading a state, so a cached state
    keeps one row of logits, and every byte it keeps is counted.
    """
    from llama_cpp.llama_cache import LlamaRAMCache

    class PromptCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(state_bytes(state) for state in self.cache_state.values())

        def __setitem__(self, key: Any, value: Any) -> None:
            value.scores = value.scores[-1:].copy()
            super().__setitem__(key, value)

    return PromptCache(capacity_bytes=capacity)


def state_bytes(state: Any) -> int:
    """What one of llama-cpp-python's saved states holds in RAM."""
    return int(state.llama_state_size) + int(state.scores.nbytes) + int(state.input_ids.nbytes)


class LlamaBackend:
    """llama-cpp-python in one worker thread; tokens are streamed back to the event loop.

    Returning channels reuse their KV prefix through llama-cpp-python's RAM cache.
    ``chat_format`` is ``CABOT_CHAT_FORMAT`` (see ``chat_format``); ``flash_attn`` is
    llama.cpp's flash attention (``CABOT_FLASH_ATTN=on``).
    """

    name = "llama.cpp"
    max_parallel = 1
    enforces = LOCAL_SAMPLING

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        cache_bytes: int = 256 << 20,
        chat_format: str = AUTO,
        flash_attn: bool = False,
    ) -> None:
        self._model_path = model_path
        self.flash_attn = flash_attn
        self._chat_format = chat_format
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._cache_bytes = cache_bytes
        self._executor: ThreadPoolExecutor | None = None
        self._llama: Any = None
        self._vocabulary: Vocabulary | None = None
        self._grammars: dict[str, Any] = {}
        self._banned = BannedWordsCache(lambda: self._words().vocab_texts, self._detokenize)
        self._counter = TokenCounter()

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    async def start(self) -> None:
        """Load the model in the worker thread."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cabot-llama")
        loop = asyncio.get_running_loop()
        try:
            self._llama = await loop.run_in_executor(self._executor, self._load)
            # The one scan of the vocabulary (a second for a large one), off the loop.
            self._vocabulary = await loop.run_in_executor(self._executor, self._read_vocabulary)
        except BaseException as error:
            await self._release()
            if not isinstance(error, ValueError | OSError | RuntimeError):
                raise
            raise InferenceError(
                f"Cannot load the model {self._model_path.name} ({error}); check that "
                "CABOT_MODEL is a valid GGUF file."
            ) from None
        self._counter.open(self._tokenize_count)

    def _load(self) -> Any:
        from llama_cpp import Llama

        def load() -> Any:
            return Llama(
                model_path=str(self._model_path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads or os.cpu_count() or 1,
                flash_attn=self.flash_attn,
                verbose=False,
            )

        llama = load()
        window = trained_window(self._model_path, self._n_ctx, int(llama._model.n_ctx_train()))
        if window < self._n_ctx:  # again, with a context the model knows
            llama.close()
            self._n_ctx = window
            llama = load()
        if self._cache_bytes > 0:
            llama.set_cache(prompt_cache(self._cache_bytes))
        log.info("loaded %s (n_ctx=%d)", self._model_path.name, self._n_ctx)
        return llama

    def _read_vocabulary(self) -> Vocabulary:
        return Vocabulary(self._model()._model.model, chat_format=self._chat_format)

    async def stop(self) -> None:
        """Release the model once the running generation stops."""
        self._counter.close()
        await self._release()

    async def _release(self) -> None:
        self._vocabulary = None
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        if self._llama is not None:
            llama, self._llama = self._llama, None
            llama.close()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text``, each text tokenized once (see ``TokenCounter``)."""
        return self._counter(text)

    def _tokenize_count(self, text: str) -> int:
        # Tokenizing reads only the vocabulary: safe beside the worker's decoding.
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _model(self) -> Any:
        if self._llama is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        return self._llama

    def _words(self) -> Vocabulary:
        if self._vocabulary is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        return self._vocabulary

    def _detokenize(self, tokens: list[int]) -> str:
        return str(self._model().detokenize(tokens).decode("utf-8", errors="ignore"))

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The tokens the model reads for ``messages`` (what ``generate`` evaluates).

        Raises:
            InferenceError: the model is not loaded, or its chat format cannot express
                the conversation.
        """
        return self._words().chat_prompt(messages)

    def _grammar(self, text: str) -> Any:
        from llama_cpp.llama_grammar import LlamaGrammar

        if text not in self._grammars:
            try:
                self._grammars[text] = LlamaGrammar.from_string(text, verbose=False)
            except (ValueError, RuntimeError) as error:
                raise InferenceError(
                    f"The profile's output grammar is not valid GBNF ({error}); fix the "
                    "layer that sets it."
                ) from None
        return self._grammars[text]

    def _completion_args(self, request: GenerationRequest) -> dict[str, Any]:
        from llama_cpp import LogitsProcessorList

        stop = [*request.stop, *self._words().chat.stop]
        prompt = self.prompt_tokens(request.messages)
        room = self._n_ctx - len(prompt)
        if room <= 0:  # llama.cpp's own context may be larger (rounded up, or not trained)
            raise ContextOverflowError(OVERFLOW)
        args: dict[str, Any] = {
            "prompt": prompt,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": request.top_k,
            "min_p": request.min_p,
            "repeat_penalty": request.repeat_penalty,
            "max_tokens": min(request.max_tokens, room) if request.max_tokens > 0 else room,
            "stop": stop or None,
            "stream": True,
        }
        if request.seed is not None:
            args["seed"] = request.seed
        if request.logit_bias:
            args["logit_bias"] = dict(request.logit_bias)
        if request.banned:
            args["logits_processor"] = LogitsProcessorList(
                [self._banned.get(request.banned)]
            )
        if request.grammar:
            args["grammar"] = self._grammar(request.grammar)
        return args

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator stops generation at the next token."""
        if self._executor is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        bridge = ThreadBridge()
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._work, request, bridge
        )
        future.add_done_callback(_log_unexpected)
        async with contextlib.aclosing(bridge.pieces()) as pieces:
            async for piece in pieces:
                yield piece

    def _work(self, request: GenerationRequest, bridge: ThreadBridge) -> None:
        """Generate in the worker thread (a failed job must never take the worker down)."""
        if bridge.cancelled:
            return
        try:
            stream = self._model().create_completion(**self._completion_args(request))
            opening = self._words().chat.strip_leading  # the space after "Assistant:"
            for chunk in stream:
                if bridge.cancelled:
                    break
                text = chunk["choices"][0]["text"]
                if opening:
                    text = text.lstrip()
                    opening = not text
                if text:
                    bridge.send(text)
        except Exception as error:
            bridge.fail(_translate(error))
        else:
            bridge.finish()


def _translate(error: Exception) -> InferenceError:
    """A llama-cpp-python exception as cabot's error.

    llama-cpp-python raises plain ``ValueError`` and ``RuntimeError``; only the message
    says that a prompt overflowed the context window, so this is the one place that
    reads it.
    """
    if isinstance(error, InferenceError):
        return error
    if isinstance(error, ValueError) and "context window" in str(error):
        return ContextOverflowError(OVERFLOW)
    log.error("generation failed", exc_info=error)
    if isinstance(error, ValueError):
        return InferenceError(f"The model rejected the request ({error}).")
    return InferenceError(f"The model failed while generating ({type(error).__name__}).")


def _log_unexpected(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("worker job ended with %r", future.exception())
