"""Text folded to what a reader reads, with a map back to the original characters.

Hard rules match the folded text, so ``shít``, ``Paris`` with a Cyrillic a (U+0430), ``**Par**is``,
``p0rn`` and ``d-a-m-n`` read as the words they imitate. Folding goes in stages; each
folded character remembers the span of original characters it came from, so a match on
the folded text masks exactly the characters a reader saw:

    base      compatibility forms (fullwidth, ligatures, mathematical letters: NFKD),
              diacritics dropped, case folded, confusable homoglyphs read as the Latin
              letter or digit they imitate (Unicode's confusables data, through the
              ``confusable_homoglyphs`` package), invisible characters dropped
    emphasis  markdown emphasis inside a word dropped: ``**Par**is``, ``sh_i_t``
    spelled   single letters joined by separators read as one word: ``d-a-m-n``,
              ``D A M N``, ``d.a.m.n``; only single letters, so ordinary words never join
    addresses spelled-out and defanged addresses read as written: ``example dot com``,
              ``john [at] example [dot] com``, ``hxxps://``, ``http[:]//``
    leet      digits and symbols inside a word that has letters read as letters:
              ``p0rn``, ``P4R1S``, ``$h1t`` (two readings: ``1`` as ``i`` and as ``l``)
    syllables a hyphen between two letters dropped: ``Ban-ana``, ``shi-t``

``views()`` gives every stage; a rule matches if it matches any of them. Word
boundaries on folded text are ASCII letters and digits (``WORD``), so matching stays
word-aware: ``class`` never contains ``ass`` as a word.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterator, Mapping

from bot.rules.addresses import addresses
from bot.rules.folded import Folded

__all__ = ["Folded", "addresses", "base", "fold_char", "fold_word", "read_leet", "views"]

WORD = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
"""What a word is made of on folded text (everything else is a boundary)."""

LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")

EMPHASIS = frozenset("*_~`")
"""Markdown emphasis marks, dropped when they sit inside a word."""

SEPARATORS = frozenset(" \t\n\r-._*,/~:+|'\"·•‧")
"""What may stand between spelled-out letters (at most ``MAX_SEPARATOR`` in a row)."""

MAX_SEPARATOR = 3

_LEET_COMMON: dict[str, str] = {
    "0": "o", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b",
    "9": "g", "@": "a", "$": "s", "+": "t", "€": "e",
}
LEET_READINGS: tuple[Mapping[str, str], ...] = (
    {**_LEET_COMMON, "1": "i", "!": "i", "|": "l"},
    {**_LEET_COMMON, "1": "l", "!": "i", "|": "i"},
)
"""The two readings of leetspeak (``1`` is an ``i`` in ``P4R1S``, an ``l`` in ``he11``)."""

LEET_SYMBOLS = frozenset("@$!|+€")
"""Leet characters that are not digits: read as letters only before a letter or digit."""

# Default-ignorable characters outside category Cf: Hangul fillers, the braille blank,
# Khmer inherent vowels (Mn, dropped anyway) and the combining grapheme joiner.
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")


def is_invisible(char: str) -> bool:
    """Whether ``char`` shows nothing: zero-width, format and other ignorable characters."""
    return unicodedata.category(char) == "Cf" or char in _INVISIBLE_EXTRA or (
        "\ufe00" <= char <= "\ufe0f"
    )


@functools.cache
def confusables() -> Mapping[str, str]:
    """Each non-ASCII character that imitates an ASCII letter or digit, and that character.

    Built once, on first use, from Unicode's confusables data as shipped by
    ``confusable_homoglyphs``: a character maps to the first look-alike (or look-alike of
    a look-alike) that is, once its diacritics are dropped, one ASCII letter or digit;
    letters are preferred over digits (the Cyrillic O, U+041E, is an o, not a zero).
    """
    from confusable_homoglyphs.confusables import confusables_data

    data: Mapping[str, list[dict[str, str]]] = confusables_data

    def ascii_of(text: str) -> str | None:
        stripped = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        ).strip("\u200e\u200f").casefold()
        return stripped if len(stripped) == 1 and stripped in WORD else None

    table: dict[str, str] = {}
    for char, entries in data.items():
        if len(char) != 1 or char.isascii():
            continue
        found = [a for a in (ascii_of(e["c"]) for e in entries) if a is not None]
        if not found:
            for entry in entries:
                for deeper in data.get(entry["c"], ()):
                    reading = ascii_of(deeper["c"])
                    if reading is not None:
                        found.append(reading)
        if found:
            letters = [f for f in found if f in LETTERS]
            table[char] = (letters or found)[0]
    return table


@functools.lru_cache(maxsize=65536)
def fold_char(char: str) -> str:
    """The base fold of one character (possibly several characters, possibly none)."""
    if char.isascii():
        return char.lower()
    if is_invisible(char):
        return ""
    table = confusables()
    out = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.combining(part) or unicodedata.category(part) in ("Mn", "Me"):
            continue
        for folded in part.casefold():
            out.append(folded if folded.isascii() else table.get(folded, folded))
    return "".join(out)


def fold_word(text: str) -> str:
    """The base fold of a whole string, without the map (for words from a layer)."""
    return "".join(fold_char(c) for c in text)


def base(text: str) -> Folded:
    """Stage one: case, compatibility forms, diacritics, homoglyphs, invisibles."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        for folded in fold_char(char):
            chars.append(folded)
            starts.append(index)
            ends.append(index + 1)
    return Folded("".join(chars), tuple(starts), tuple(ends))


def _keep(folded: Folded, keep: list[bool]) -> Folded:
    return Folded(
        "".join(c for c, k in zip(folded.text, keep, strict=True) if k),
        tuple(s for s, k in zip(folded.starts, keep, strict=True) if k),
        tuple(e for e, k in zip(folded.ends, keep, strict=True) if k),
    )


def _runs(text: str, members: frozenset[str]) -> Iterator[tuple[int, int]]:
    """The maximal runs of ``members`` characters in ``text``."""
    index = 0
    while index < len(text):
        if text[index] in members:
            end = index
            while end < len(text) and text[end] in members:
                end += 1
            yield index, end
            index = end
        else:
            index += 1


def without_emphasis(folded: Folded) -> Folded:
    """Stage two: emphasis marks between two word characters dropped (``**Par**is``).

    A run at the very end after a word character is dropped too: more of the word may
    still come.
    """
    text = folded.text
    keep = [True] * len(text)
    changed = False
    for start, end in _runs(text, EMPHASIS):
        before = start > 0 and text[start - 1] in WORD
        after = end == len(text) or text[end] in WORD
        if text[start:end] == "_" and _word_length(text, start, -1) >= 3 and (
            _word_length(text, end, 1) >= 3
        ):
            continue  # snake_case: an identifier's words, not emphasis
        if before and after:
            keep[start:end] = [False] * (end - start)
            changed = True
    return _keep(folded, keep) if changed else folded


HYPHENS = frozenset("-\u2010\u2011")
"""Hyphens that may split a word into syllables (``Ban-ana``, ``shi-t``)."""


def without_hyphens(folded: Folded) -> Folded:
    """Syllables joined: a hyphen between two letters dropped (``Ban-ana``, ``Fran-ce``).

    Only between letters, so numbers and ranges (``1914-1918``) keep theirs; a hyphen at
    the very end after a letter is dropped too (the word may go on).
    """
    text = folded.text
    keep = [True] * len(text)
    changed = False
    for start, end in _runs(text, HYPHENS):
        if end - start != 1 or start == 0 or text[start - 1] not in LETTERS:
            continue
        if end == len(text) or text[end] in LETTERS:
            keep[start] = False
            changed = True
    return _keep(folded, keep) if changed else folded


def _word_length(text: str, index: int, step: int) -> int:
    """How many word characters run from ``index`` (forward) or before it (backward)."""
    count = 0
    at = index if step > 0 else index - 1
    while 0 <= at < len(text) and text[at] in WORD:
        count += 1
        at += step
    return count


def _single(text: str, index: int) -> bool:
    """Whether ``text[index]`` stands alone: one letter, digit or leet symbol."""
    char = text[index]
    if char not in WORD and char not in LEET_SYMBOLS:
        return False
    before = index > 0 and text[index - 1] in WORD
    after = index + 1 < len(text) and text[index + 1] in WORD
    return not before and not after


def _gap_end(text: str, start: int) -> int:
    """The end of the separator run starting at ``start`` (``start`` if there is none)."""
    end = start
    while end < len(text) and text[end] in SEPARATORS and end - start < MAX_SEPARATOR:
        end += 1
    return end


def _kind(gap: str) -> str:
    """What a separator says: "" for white space, else its visible marks (``-``, ``.``)."""
    return "".join(gap.split())


def _chains(text: str) -> Iterator[list[tuple[int, int, int]]]:
    """Runs of single characters joined by separators of one kind.

    Each chain is a list of ``(element, gap start, gap end)``; the last gap is empty
    unless the text ends in a separator after it. Where the kind of separator changes, a
    visible separator binds tighter than white space: ``d a m n d.a.m.n`` is two chains.
    """
    index = 0
    while index < len(text):
        if not _single(text, index):
            index += 1
            continue
        group = []
        element = index
        while True:
            gap_end = _gap_end(text, element + 1)
            group.append((element, element + 1, gap_end))
            if gap_end == element + 1 or gap_end == len(text) or not _single(text, gap_end):
                break
            element = gap_end
        index = group[-1][2] if group[-1][2] > group[-1][0] + 1 else group[-1][0] + 1
        chain: list[tuple[int, int, int]] = []
        kind: str | None = None
        for position, item in enumerate(group):
            chain.append(item)
            last = position == len(group) - 1
            if last:
                break
            this = _kind(text[item[1]:item[2]])
            if kind is None:
                kind = this
                continue
            if this == kind:
                continue
            if kind == "" and this != "":
                # The element before a visible separator starts the next chain.
                chain.pop()
                yield [*chain[:-1], (chain[-1][0], chain[-1][1], chain[-1][1])]
                chain = [item]
                kind = this
            else:
                yield [*chain[:-1], (item[0], item[1], item[1])]
                chain = []
                kind = None
        if chain:
            yield chain


def spelled(folded: Folded) -> Folded:
    """Stage three: single letters joined by separators read as one word (``d-a-m-n``).

    A chain needs two single characters, at least one of them a letter; separators after
    a chain (or one single letter) at the very end are dropped too: the next letter may
    follow.
    """
    text = folded.text
    keep = [True] * len(text)
    changed = False
    for chain in _chains(text):
        trailing = chain[-1][2] == len(text) and chain[-1][2] > chain[-1][1]
        if not any(text[e] in LETTERS for e, _, _ in chain) or (
            len(chain) < 2 and not trailing
        ):
            continue
        gaps = [(start, end) for _, start, end in chain[:-1]]
        if trailing:
            gaps.append(chain[-1][1:])
        for start, end in gaps:
            keep[start:end] = [False] * (end - start)
            changed = True
    return _keep(folded, keep) if changed else folded


def leet(folded: Folded, reading: Mapping[str, str]) -> Folded:
    """Stage four: leet characters inside a word that has a letter read as letters.

    Digits are read as letters anywhere in such a word (``P4R1S``); symbols only before a
    letter or digit, or at the very end (``$h1t``, ``sh!t``, but not ``wow!``). Each
    character stays one character, so the map is unchanged.
    """
    text = folded.text
    members = WORD | LEET_SYMBOLS
    out = list(text)
    changed = False
    for start, end in _runs(text, members):
        if not any(text[i] in LETTERS for i in range(start, end)):
            continue
        for i in range(start, end):
            char = text[i]
            if char not in reading:
                continue
            if char in LEET_SYMBOLS and not (
                (i + 1 < len(text) and text[i + 1] in WORD) or i + 1 == len(text)
            ):
                continue
            out[i] = reading[char]
            changed = True
    return Folded("".join(out), folded.starts, folded.ends, leet=True) if changed else folded


def views(text: str) -> list[Folded]:
    """Every folded reading of ``text``, each once: base, emphasis, spelled, addresses,
    leet, and syllables joined."""
    first = base(text)
    second = without_emphasis(first)
    third = addresses(spelled(second))
    joined = without_hyphens(second)
    result = [first]
    for view in (second, third, *(leet(third, r) for r in LEET_READINGS), joined,
                 leet(joined, LEET_READINGS[0])):
        if all(view.text != seen.text for seen in result):
            result.append(view)
    return result


def read_leet(word: str) -> str:
    """``word`` (already folded) with its leet characters read as letters (first reading)."""
    return leet(Folded(word, tuple(range(len(word))), tuple(range(1, len(word) + 1))),
                LEET_READINGS[0]).text
