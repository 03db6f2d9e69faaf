"""Known English words: what tells ``assume`` (a word) from ``Bananacabalad`` (a banned
word with letters glued on).

A banned word bans a whole word that starts with it unless the rest is a known word's
(``assume``, ``cocktail``, ``Dickens``, ``Parisian``): the English frequency list shipped by
``pyspellchecker`` (words seen at least ``MIN_COUNT`` times), loaded once, on first use.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
from collections.abc import Callable
from importlib import resources

MIN_COUNT = 5
"""How often a word must appear in the frequency list to count as known."""


@functools.cache
def english_words() -> tuple[str, ...]:
    """Known English words, lower case, letters only, sorted."""
    data = resources.files("spellchecker").joinpath("resources/en.json.gz").read_bytes()
    counts: dict[str, int] = json.loads(gzip.decompress(data))
    return tuple(sorted(w for w, n in counts.items() if n >= MIN_COUNT and w.isalpha()))


def is_known(word: str, words: tuple[str, ...] | None = None) -> bool:
    """Whether ``word`` is a known word."""
    words = words if words is not None else english_words()
    at = bisect.bisect_left(words, word)
    return at < len(words) and words[at] == word


def begins_known(prefix: str, words: tuple[str, ...] | None = None) -> bool:
    """Whether some known word starts with ``prefix``."""
    words = words if words is not None else english_words()
    at = bisect.bisect_left(words, prefix)
    return at < len(words) and words[at].startswith(prefix)


@functools.cache
def folded_words(fold: Callable[[str], str]) -> tuple[str, ...]:
    """Known words as ``fold`` spells them, sorted (for generation-time banning)."""
    return tuple(sorted({fold(w) for w in english_words()}))
