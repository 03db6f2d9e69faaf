"""Token counts for prompt budgeting, each text tokenized once.

Prompt fitting counts the system prompt and every message of a channel's history on
every turn, on the event loop. Both engines answer ``count_tokens`` through a
``TokenCounter``, which keeps each text's count in an LRU bounded by the characters it
holds, so a returning conversation costs one tokenize per new message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cachetools import LRUCache

from bot.errors import InferenceError

ENTRY_OVERHEAD = 64
"""What an entry costs beside its text, in characters (so many tiny texts stay bounded)."""


class TokenCounter:
    """Counts the tokens of texts with a model's tokenizer, remembering each count.

    Safe from any thread. ``open`` it with the tokenizer once the model is loaded, and
    ``close`` it before the model is freed: a count in progress finishes first, later
    ones raise.

    Args:
        max_chars: the characters of text (plus ``ENTRY_OVERHEAD`` each) it remembers.
    """

    def __init__(self, *, max_chars: int = 2_000_000) -> None:
        self._count: Callable[[str], int] | None = None
        self._lock = threading.Lock()
        self._cache: LRUCache[str, tuple[int, int]] = LRUCache(
            maxsize=max_chars, getsizeof=lambda entry: entry[1]
        )

    def open(self, count: Callable[[str], int]) -> None:
        """Count with ``count`` (tokens of a text, without BOS or control tokens)."""
        with self._lock:
            self._count = count

    def close(self) -> None:
        """Stop counting (the model is about to be freed) and forget every count."""
        with self._lock:
            self._count = None
            self._cache.clear()

    def __call__(self, text: str) -> int:
        """Tokens of ``text``.

        Raises:
            InferenceError: the model is not loaded.
        """
        with self._lock:
            entry = self._cache.get(text)
            if entry is not None:
                return entry[0]
            if self._count is None:
                raise InferenceError("The model is not loaded; start the backend first.")
            tokens = self._count(text)
            size = len(text) + ENTRY_OVERHEAD
            if size <= self._cache.maxsize:
                self._cache[text] = (tokens, size)
            return tokens
