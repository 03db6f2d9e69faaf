"""Banned words enforced at generation: the tokens that would complete one get no chance.

A word is banned wherever a word *starts* with it ("banana" also bans "Bananabug" but
not "scrap" for "crap"), in any letter case and whatever tokenization the model tries:
given the text generated so far, every token that would complete a banned word is
forbidden (a logit bias of minus infinity) for the next step. The output filter in
``bot.filters`` applies the same rule to the visible text. Both engines keep their
processors in one ``BannedWordsCache``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

_NEG_INF = float("-inf")


class BannedWords:
    """Which tokens may not come next, for a set of banned words and phrases.

    Args:
        words: the banned words or phrases.
        vocab: the text of every token id (special tokens as "").
        detokenize: token ids to text, used to read back what was generated.
    """

    def __init__(
        self,
        words: Sequence[str],
        vocab: Sequence[str],
        detokenize: Callable[[list[int]], str],
    ) -> None:
        self._detokenize = detokenize
        self._words = sorted({w.lower() for w in words if w.strip()})
        self._context = max((len(w) for w in self._words), default=0) + 1
        by_first: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for token_id, text in enumerate(vocab):
            if text:
                by_first[text[0].lower()].append((token_id, text.lower()))

        def starting_with(prefix: str) -> set[int]:
            return {i for i, t in by_first.get(prefix[0], ()) if t.startswith(prefix)}

        always: set[int] = set()
        at_word_start: set[int] = set()
        self._after: dict[str, set[int]] = defaultdict(set)
        for word in self._words:
            at_word_start |= starting_with(word)
            # Tokens that open a new word inside themselves: " banana", "(banana", "\nbanana".
            for first, entries in by_first.items():
                if not first.isalnum() and first != "_":
                    always |= {
                        i for i, t in entries
                        if t.lstrip(_non_word(t)).startswith(word) and _non_word(t)
                    }
            for k in range(1, len(word)):
                self._after[word[:k]] |= starting_with(word[k:])
        self._always = np.fromiter(sorted(always), dtype=np.intc)
        self._at_word_start = np.fromiter(sorted(at_word_start), dtype=np.intc)
        self._after_arrays = {
            head: np.fromiter(sorted(ids), dtype=np.intc) for head, ids in self._after.items()
        }

    @property
    def context_tokens(self) -> int:
        """How many trailing tokens to read back (enough for the longest word)."""
        return self._context + 2

    def forbidden(self, tail: str) -> list[npt.NDArray[np.intc]]:
        """Arrays of token ids not allowed after the generated text ending in ``tail``."""
        result = [self._always]
        lowered = tail.lower()
        if not lowered or not _is_word_char(lowered[-1]):
            result.append(self._at_word_start)
        for head, ids in self._after_arrays.items():
            if lowered.endswith(head):
                before = len(lowered) - len(head)
                if before <= 0 or not _is_word_char(lowered[before - 1]):
                    result.append(ids)
        return result

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        """A llama-cpp-python logits processor."""
        recent = [int(t) for t in input_ids[-self.context_tokens:]]
        tail = self._detokenize(recent)[-self._context:]
        for ids in self.forbidden(tail):
            if len(ids):
                scores[ids] = _NEG_INF
        return scores


class BannedWordsCache:
    """A ``BannedWords`` per set of banned words; the ``size`` most recently used are kept.

    Building one scans the whole vocabulary, so each profile's set is built once. Not
    thread-safe: the engine's worker thread owns it.

    Args:
        vocab: the text of every token id, asked for only when a set is first built (so
            it may be computed lazily).
        detokenize: token ids to text.
        size: how many sets to keep.
    """

    def __init__(
        self,
        vocab: Callable[[], Sequence[str]],
        detokenize: Callable[[list[int]], str],
        *,
        size: int = 32,
    ) -> None:
        self._vocab = vocab
        self._detokenize = detokenize
        self._cache: LRUCache[tuple[str, ...], BannedWords] = LRUCache(maxsize=size)

    def get(self, words: Iterable[str]) -> BannedWords:
        """The processor for ``words`` (in any order)."""
        key = tuple(sorted(words))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = BannedWords(key, self._vocab(), self._detokenize)
        return found


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _non_word(text: str) -> str:
    """The leading non-word characters of ``text``."""
    end = 0
    while end < len(text) and not _is_word_char(text[end]):
        end += 1
    return text[:end]
