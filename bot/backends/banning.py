"""Banned words enforced at generation: the tokens that would complete one get no chance.

A banned word is banned as a whole word with its inflections ("banana" also bans
"Bananas", "damn" bans "damned") and with any letters glued on that make no known word
("Bananacabalad"), but "ass" does not ban "assume" nor "class"), whatever
tokenization the model tries and however it is spelled, as far as the vocabulary has
the tokens for it: in any letter case, with accents, look-alike letters (a Cyrillic a, U+0430),
leetspeak (``P4R1S``), emphasis marks or invisible characters inside, and spelled out
letter by letter (``B-A-N-A-N-A``: the token of the last letter is forbidden) or in
syllables (``Ban-ana``: the rest after the hyphen is forbidden). Token
texts and the generated text are compared in one canonical folding (``canonical``):
the base fold of ``bot.rules.folding``, leet read as letters, ``l`` and ``i`` alike.

Given the text generated so far, every token that would complete a banned word is
forbidden (a logit bias of minus infinity) for the next step. The stream filter in
``bot.filters`` is the guarantee on the visible text; this keeps the model from
spending its reply on words that would only be masked. Both engines keep their
processors in one ``BannedWordsCache``.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt
from lru import LRU

from bot.rules.folding import EMPHASIS, LEET_READINGS, SEPARATORS, fold_char
from bot.rules.lexicon import begins_known, folded_words, is_known
from bot.rules.matching import INFLECTIONS

_NEG_INF = float("-inf")
# Leet read without context: digits and the symbols that open a word. "!" and "|" stay
# (a "Wow!" must not read as a word going on); the stream filter reads them in context.
_LEET = {k: v for k, v in LEET_READINGS[0].items() if k.isdigit() or k in "$@€"}
_SPELLED_MAX = 3
_SYLLABLE_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z]|$)")
"""The most letters one token may spell out (``"-M-N"``)."""


@functools.lru_cache(maxsize=65536)
def _canonical_char(char: str) -> str:
    out = []
    for folded in fold_char(char):
        if folded in EMPHASIS:
            continue
        folded = _LEET.get(folded, folded)
        out.append("i" if folded == "l" else folded)
    return "".join(out)


def canonical(text: str) -> str:
    """``text`` as generation-time banning compares it: folded, leet read, ``l`` as ``i``."""
    return "".join(_canonical_char(c) for c in text)


def _is_word_char(char: str) -> bool:
    return char.isalnum()


def _non_word(text: str) -> str:
    """The leading non-word characters of ``text``."""
    end = 0
    while end < len(text) and not _is_word_char(text[end]):
        end += 1
    return text[:end]


def _inflection(rest: str, last: str) -> bool:
    """Whether a banned word followed by ``rest`` may still be that word, inflected."""
    if not rest or not _is_word_char(rest[0]):
        return True
    tails = [rest, rest[1:]] if rest[0] == last else [rest]
    for tail in tails:
        if not tail or not _is_word_char(tail[0]):
            return True
        for ending in INFLECTIONS:
            if ending.startswith(tail):
                return True
            if tail.startswith(ending) and (
                len(tail) == len(ending) or not _is_word_char(tail[len(ending)])
            ):
                return True
    return False


def _completes(token: str, rest: str, word: str, known: tuple[str, ...]) -> bool:
    """Whether ``token`` (canonical) finishes ``word`` whose ``rest`` is still missing.

    It does unless the letters after the word may still make a known word (``assume``);
    an inflection, or letters no known word goes on with, finish it.
    """
    if not token.startswith(rest):
        return False
    after = token[len(rest):]
    if _inflection(after, word[-1]):
        return True
    glued = after
    for index, char in enumerate(after):
        if not _is_word_char(char):
            glued = after[:index]
            break
    if len(glued) >= 3 and begins_known(glued, known):
        return False  # a compound with a known word: Cockburn, cockpit
    if len(glued) < len(after):  # the word ends inside the token
        return not is_known(word + glued, known)
    return not begins_known(word + glued, known)


def _spelled_reading(token: str) -> str | None:
    """The letters a token spells out (``" N"``, ``"-N"``, ``"M-N"``), if that is all it is."""
    letters = []
    previous_letter = False
    for char in token:
        if char in SEPARATORS:
            previous_letter = False
        elif char.isascii() and char.isalpha() and not previous_letter:
            letters.append(char)
            previous_letter = True
        else:
            return None
    if not letters or len(letters) > _SPELLED_MAX:
        return None
    return "".join(letters)


def _spelled_tail(tail: str) -> tuple[str, bool] | None:
    """The letters spelled out at the end of ``tail`` and whether a separator follows."""
    index = len(tail)
    while index > 0 and tail[index - 1] in SEPARATORS:
        index -= 1
    separated = index < len(tail)
    letters: list[str] = []
    while index > 0:
        char = tail[index - 1]
        before = tail[index - 2] if index >= 2 else ""
        if not (char.isascii() and char.isalpha()) or (before and _is_word_char(before)):
            break
        letters.append(char)
        index -= 1
        gap = index
        while index > 0 and tail[index - 1] in SEPARATORS and gap - index < 3:
            index -= 1
        if index == gap:
            break
    if not letters:
        return None
    return "".join(reversed(letters)), separated


class BannedWords:
    """Which tokens may not come next, for a set of banned words and phrases.

    Args:
        words: the banned words or phrases.
        vocab: the text of every token id (special tokens as "").
        detokenize: token ids to text, used to read back what was generated.
        folded: ``vocab`` already in ``canonical`` form (computed here if not given).
    """

    def __init__(
        self,
        words: Sequence[str],
        vocab: Sequence[str],
        detokenize: Callable[[list[int]], str],
        *,
        folded: Sequence[str] | None = None,
    ) -> None:
        self._detokenize = detokenize
        self._words = sorted({canonical(w).strip() for w in words if w.strip()} - {""})
        longest = max((len(w) for w in self._words), default=0)
        self._context = 4 * longest + 4
        texts = folded if folded is not None else [canonical(t) for t in vocab]
        by_first: dict[str, list[tuple[int, str]]] = defaultdict(list)
        leading: list[tuple[int, str, str]] = []
        spelled: dict[str, list[int]] = defaultdict(list)
        for token_id, text in enumerate(texts):
            if not text:
                continue
            by_first[text[0]].append((token_id, text))
            lead = _non_word(text)
            if lead and len(lead) < len(text):
                leading.append((token_id, lead, text[len(lead):]))
            reading = _spelled_reading(text)
            if reading is not None:
                spelled[reading].append(token_id)

        known = folded_words(canonical)

        def completing(rest: str, word: str) -> set[int]:
            return {i for i, t in by_first.get(rest[0], ())
                    if _completes(t, rest, word, known)}

        always: set[int] = set()
        at_word_start: set[int] = set()
        self._after: dict[str, set[int]] = defaultdict(set)
        self._spelled: dict[str, set[int]] = defaultdict(set)
        for word in self._words:
            at_word_start |= completing(word, word)
            # Tokens that open a new word inside themselves: " banana", "(banana", "\nbanana".
            always |= {i for i, _, body in leading if _completes(body, word, word, known)}
            for k in range(1, len(word)):
                self._after[word[:k]] |= completing(word[k:], word)
            # Spelled out: after "D-A-M-", the tokens " N", "-N", "N" spell the rest.
            letters = "".join(word.split())
            if len(letters) >= 3 and letters.isascii() and letters.isalpha():
                for k in range(max(1, len(letters) - _SPELLED_MAX), len(letters)):
                    self._spelled[letters[:k]] |= set(spelled.get(letters[k:], ()))
        self._always = _array(always)
        self._at_word_start = _array(at_word_start)
        self._after_arrays = {head: _array(ids) for head, ids in self._after.items()}
        self._spelled_arrays = {head: _array(ids) for head, ids in self._spelled.items()}

    @property
    def context_tokens(self) -> int:
        """How many trailing tokens to read back (enough for the longest word spelled out)."""
        return self._context // 2 + 2

    def forbidden(self, tail: str) -> list[npt.NDArray[np.intc]]:
        """Arrays of token ids not allowed after the generated text ending in ``tail``."""
        result = [self._always]
        folded = canonical(tail)
        if not folded or not _is_word_char(folded[-1]):
            result.append(self._at_word_start)
        # A hyphen between syllables ("Ban-" before "ana") does not end the word.
        joined = _SYLLABLE_HYPHEN.sub("", folded)
        for tail in {folded, joined}:
            for head, ids in self._after_arrays.items():
                if tail.endswith(head):
                    before = len(tail) - len(head)
                    if before <= 0 or not _is_word_char(tail[before - 1]):
                        result.append(ids)
        if self._spelled_arrays:
            spelled = _spelled_tail(folded)
            if spelled is not None:
                letters, _ = spelled
                for start in range(len(letters)):
                    found = self._spelled_arrays.get(letters[start:])
                    if found is not None:
                        result.append(found)
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


def _array(ids: Iterable[int]) -> npt.NDArray[np.intc]:
    return np.fromiter(sorted(ids), dtype=np.intc)


class BannedWordsCache:
    """A ``BannedWords`` per set of banned words; the ``size`` most recently used are kept.

    Building one scans the whole vocabulary, so each profile's set is built once, and
    the vocabulary is folded once for all of them. Not thread-safe: the engine's worker
    thread owns it.

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
        self._folded: list[str] | None = None
        self._cache: LRU[tuple[str, ...], BannedWords] = LRU(size)

    def get(self, words: Iterable[str]) -> BannedWords:
        """The processor for ``words`` (in any order)."""
        key = tuple(sorted(words))
        found = self._cache.get(key)
        if found is None:
            vocab = self._vocab()
            if self._folded is None:
                self._folded = [canonical(t) for t in vocab]
            found = self._cache[key] = BannedWords(
                key, vocab, self._detokenize, folded=self._folded
            )
        return found
