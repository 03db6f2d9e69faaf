"""The in-process llama.cpp backend: one worker thread owns the model."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.backends.banning import BannedWords
from bot.backends.base import GenerationRequest
from bot.backends.specials import ControlTokenGuard
from bot.errors import InferenceError

log = logging.getLogger(__name__)

class LlamaBackend:
    """llama-cpp-python in one worker thread; tokens are streamed back to the event loop.

    Returning channels reuse their KV prefix through llama-cpp-python's RAM cache.
    """

    name = "llama.cpp"
    max_parallel = 1

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        cache_bytes: int = 256 << 20,
    ) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._cache_bytes = cache_bytes
        self._executor: ThreadPoolExecutor | None = None
        self._llama: Any = None
        self._grammars: dict[str, Any] = {}
        self._vocab_texts: list[str] | None = None
        self._banned_cache: dict[tuple[str, ...], BannedWords] = {}
        self._control_guard: ControlTokenGuard | None = None

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    async def start(self) -> None:
        """Load the model in the worker thread."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cabot-llama")
        loop = asyncio.get_running_loop()
        try:
            self._llama = await loop.run_in_executor(self._executor, self._load)
        except (ValueError, OSError, RuntimeError) as error:
            raise InferenceError(
                f"Cannot load the model {self._model_path.name} ({error}); check that "
                "CABOT_MODEL is a valid GGUF file."
            ) from None

    def _load(self) -> Any:
        from llama_cpp import Llama
        from llama_cpp.llama_cache import LlamaRAMCache

        llama = Llama(
            model_path=str(self._model_path),
            n_ctx=self._n_ctx,
            n_threads=self._n_threads or os.cpu_count() or 1,
            verbose=False,
        )
        if self._cache_bytes > 0:
            llama.set_cache(LlamaRAMCache(capacity_bytes=self._cache_bytes))
        log.info("loaded %s (n_ctx=%d)", self._model_path.name, self._n_ctx)
        return llama

    async def stop(self) -> None:
        """Release the model once the running generation stops."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
        if self._llama is not None:
            llama, self._llama = self._llama, None
            llama.close()

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (tokenizing reads only the vocabulary; safe beside decoding)."""
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _model(self) -> Any:
        if self._llama is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        return self._llama

    def _vocab(self) -> list[str]:
        if self._vocab_texts is None:
            llama = self._model()
            self._vocab_texts = [
                llama.detokenize([i]).decode("utf-8", errors="ignore")
                for i in range(llama.n_vocab())
            ]
        return self._vocab_texts

    def _guard(self) -> ControlTokenGuard:
        if self._control_guard is None:
            llama = self._model()
            self._control_guard = ControlTokenGuard(
                llama.detokenize([i], special=True).decode("utf-8", errors="ignore")
                for i, text in enumerate(self._vocab())
                if not text
            )
        return self._control_guard

    def _detokenize(self, tokens: list[int]) -> str:
        return str(self._model().detokenize(tokens).decode("utf-8", errors="ignore"))

    def _banned_words(self, banned: tuple[str, ...]) -> BannedWords:
        if banned not in self._banned_cache:
            if len(self._banned_cache) > 32:
                self._banned_cache.clear()
            self._banned_cache[banned] = BannedWords(banned, self._vocab(), self._detokenize)
        return self._banned_cache[banned]

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

        args: dict[str, Any] = {
            "messages": [
                {"role": m.role, "content": self._guard().escape(m.content)}
                for m in request.messages
            ],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": request.top_k,
            "min_p": request.min_p,
            "repeat_penalty": request.repeat_penalty,
            "max_tokens": request.max_tokens,
            "stop": list(request.stop) or None,
            "stream": True,
        }
        if request.seed is not None:
            args["seed"] = request.seed
        if request.logit_bias:
            args["logit_bias"] = dict(request.logit_bias)
        if request.banned:
            args["logits_processor"] = LogitsProcessorList(
                [self._banned_words(tuple(sorted(request.banned)))]
            )
        if request.grammar:
            args["grammar"] = self._grammar(request.grammar)
        return args

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator stops generation at the next token."""
        if self._executor is None:
            raise InferenceError("The model is not loaded; start the backend first.")
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancelled = threading.Event()

        def put(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, (kind, value))
            except RuntimeError:  # the loop closed while we were generating
                cancelled.set()

        def work() -> None:
            if cancelled.is_set():
                return
            try:
                llama = self._model()
                stream = llama.create_chat_completion(**self._completion_args(request))
                for chunk in stream:
                    if cancelled.is_set():
                        break
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        put("text", text)
                put("done", None)
            except InferenceError as error:
                put("error", str(error))
            except ValueError as error:
                if "context window" in str(error):
                    put("error", "The prompt does not fit the model's context window; "
                        "try /forget or a shorter message.")
                else:
                    log.exception("generation failed")
                    put("error", f"The model rejected the request ({error}).")
            except Exception as error:  # a failed job must never take the worker down
                log.exception("generation failed")
                put("error", f"The model failed while generating ({type(error).__name__}).")

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                kind, value = await pieces.get()
                if kind == "text":
                    yield value
                elif kind == "done":
                    break
                else:
                    raise InferenceError(str(value))
        finally:
            cancelled.set()
            future.add_done_callback(_log_unexpected)


def _log_unexpected(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("worker job ended with %r", future.exception())

