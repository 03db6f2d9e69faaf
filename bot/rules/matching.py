"""Hard rules matched on folded text, found as spans of the original text.

A ``BannedWordMatcher`` finds banned words and phrases, their inflections and any word
they start that is not a known word, in every folded reading of a text
(``bot.rules.folding``): ``shít``, ``P4R1S``, ``**Par**is``, ``d-a-m-n`` and
``Bananacabalad`` are found, ``class``, ``Scunthorpe`` and ``Dickens`` are not. A
``PatternMatcher`` runs a layer's regular expression (case-insensitively) on the original
text and, unless the rule is exact, on every folded reading; a named check
(``bot.rules.checks``) can confirm each candidate. Matches come back as ``Span``s of the
original text, so a filter masks exactly what a reader would have read.

Mid-stream, a matcher also reports where a match may still be growing at the end of the
text (``Span.complete`` false): the stream filter holds that text back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import regex

from bot.rules.checks import CHECKS, NUMERIC
from bot.rules.folding import Folded, fold_word, read_leet, views
from bot.rules.lexicon import is_known

BANNED_REPLACEMENT = "▇▇▇"

INFLECTIONS: tuple[str, ...] = (
    "s", "es", "d", "ed", "ing", "ings", "in", "er", "ers", "est", "y", "ie", "ies", "ier",
    "iest",
)
"""Endings that keep a banned word banned (``damned``, ``shitty``, ``bananas``). Other
letters after a banned word keep it banned too, unless they make a known word
(``assume``, ``Dickens``, ``cocktail``; ``bot.rules.lexicon``) or are one (``Cockburn``)."""

PHRASE_GAP = r"[\s*_~\-]+"
"""What may stand between the words of a banned phrase on folded text."""

OPEN_END = frozenset(" \t\n\r-._,:;/\\()[]{}<>'\"*~")
"""Characters after a match that leave it open: more of it may still come."""


@dataclass(frozen=True)
class Span:
    """Original characters ``start:end`` to replace with ``replacement``.

    ``complete`` is false for a match that may still grow (it reaches the end of the
    text, or a check could not confirm it yet): such text is held back mid-stream.
    """

    start: int
    end: int
    replacement: str
    complete: bool = True


def is_open(text: str, end: int) -> bool:
    """Whether a match ending at ``end`` is followed only by what could continue it."""
    return all(char in OPEN_END for char in text[end:])


def banned_pattern(words: Iterable[str]) -> str | None:
    """One regular expression (for folded text) finding any of ``words`` as a word."""
    branches: set[str] = set()
    for word in words:
        folded = fold_word(word).strip()
        for spelling in {folded, read_leet(folded)}:
            parts = spelling.split()
            if not parts:
                continue
            body = PHRASE_GAP.join(regex.escape(part) for part in parts)
            last = spelling[-1]
            if last.isalpha():
                endings = "|".join(INFLECTIONS)
                body += f"(?:{regex.escape(last)}?(?:{endings}))?"
            branches.add(body)
    if not branches:
        return None
    alternatives = "|".join(sorted(branches, key=lambda b: (-len(b), b)))
    return rf"(?<![a-z0-9])(?:{alternatives})(?P<rest>[a-z0-9]*)(?![a-z0-9])"


class Matcher:
    """Finds one rule's matches in a text, given the text's folded readings."""

    def spans(self, text: str, readings: Sequence[Folded]) -> Iterator[Span]:
        """Every match, as original spans (incomplete ones only where they reach the end)."""
        raise NotImplementedError

    def search(self, text: str, readings: Sequence[Folded]) -> bool:
        """Whether a complete match is in ``text`` (for input: nothing more will come)."""
        return any(span.complete for span in self.spans(text, readings))


class BannedWordMatcher(Matcher):
    """Banned words and phrases, folded, as whole words with their inflections."""

    def __init__(self, words: Iterable[str], replacement: str = BANNED_REPLACEMENT) -> None:
        source = banned_pattern(words)
        self._pattern = regex.compile(source) if source else None
        self._replacement = replacement

    def spans(self, text: str, readings: Sequence[Folded]) -> Iterator[Span]:
        if self._pattern is None:
            return
        for folded in readings:
            for match in self._pattern.finditer(folded.text, partial=True):
                start, end = match.span()
                if start == end:
                    continue
                rest = match.group("rest")
                if not match.partial and rest:
                    # More letters than an inflection: banned unless they make a known
                    # word (assume, cocktail, Dickens) or add one (Cockburn), so that
                    # "Bananacabalad" is no escape.
                    word = regex.split(r"[^a-z0-9]+", match.group())[-1]
                    if is_known(word) or (len(rest) >= 3 and is_known(rest)):
                        continue
                yield Span(*folded.original(start, end), self._replacement,
                           not match.partial)


class PatternMatcher(Matcher):
    """A layer's regular expression, on the original text and (unless exact) folded.

    Args:
        pattern: the regular expression (matched case-insensitively).
        replacement: what a match becomes (for redaction).
        exact: match the original text only, without folding.
        check: the name of a check in ``bot.rules.checks.CHECKS`` each candidate must pass.
    """

    def __init__(
        self, pattern: str, replacement: str = "", *, exact: bool = False,
        check: str | None = None,
    ) -> None:
        self._pattern = regex.compile(pattern, regex.IGNORECASE | regex.VERSION0)
        self._replacement = replacement
        self._exact = exact
        self._check = CHECKS[check] if check is not None else None
        self._numeric = check in NUMERIC

    def spans(self, text: str, readings: Sequence[Folded]) -> Iterator[Span]:
        sources: list[tuple[str, Folded | None]] = [(text, None)]
        if not self._exact:
            sources += [(folded.text, folded) for folded in readings
                        if not (self._numeric and folded.leet)]
        for source, folded in sources:
            for match in self._pattern.finditer(source, partial=True):
                start, end = match.span()
                if start == end:
                    continue
                if match.partial:
                    yield Span(*_original(folded, start, end), self._replacement, False)
                    continue
                found: tuple[int, int] | None = (0, end - start)
                if self._check is not None:
                    found = self._check(match.group())
                if found is None:
                    if is_open(source, end):  # more text may make it a match
                        yield Span(*_original(folded, start, end), self._replacement, False)
                    continue
                yield Span(*_original(folded, start + found[0], start + found[1]),
                           self._replacement)


def _original(folded: Folded | None, start: int, end: int) -> tuple[int, int]:
    return (start, end) if folded is None else folded.original(start, end)


class RuleSet:
    """Several matchers over one text: its folded readings are computed once."""

    def __init__(self, matchers: Iterable[Matcher]) -> None:
        self.matchers = list(matchers)

    def __bool__(self) -> bool:
        return bool(self.matchers)

    def spans(self, text: str) -> list[Span]:
        """Every match of every matcher in ``text``."""
        if not self.matchers or not text:
            return []
        readings = views(text)
        return [span for m in self.matchers for span in m.spans(text, readings)]


def merge(spans: Iterable[Span]) -> list[Span]:
    """Complete spans without overlaps, in order; overlapping ones become one.

    Where spans overlap, the one that starts first (the longest, on a tie) gives the
    replacement.
    """
    result: list[Span] = []
    for span in sorted((s for s in spans if s.complete), key=lambda s: (s.start, -s.end)):
        if result and span.start < result[-1].end:
            last = result[-1]
            if span.end > last.end:
                result[-1] = Span(last.start, span.end, last.replacement)
            continue
        result.append(span)
    return result


def render(text: str, spans: Sequence[Span]) -> str:
    """``text`` with each (merged, ordered) span replaced."""
    out: list[str] = []
    at = 0
    for span in spans:
        out.append(text[at:span.start])
        out.append(span.replacement)
        at = span.end
    out.append(text[at:])
    return "".join(out)


_DIGIT_RUN = regex.compile(r"\d(?:[\s.\-/,()]{0,2}\d)*")
ECHO_DIGITS = 7
"""Digits of a user's personal number that, shown in any grouping, give it away."""


class EchoMatcher(Matcher):
    """The digits of personal numbers found in what the user wrote, in any grouping.

    A reply may not give a user's phone, card or account number back even cut,
    regrouped or with a group left out ("06 12 34 56 78" echoed as "12345678", "DE89 3704
    0044 0532 0130 00" as "DE89 3704 0532 0130"): a run of digits holding
    ``ECHO_DIGITS`` of one of ``secrets`` in a row is replaced.
    """

    def __init__(self, secrets: Iterable[str], replacement: str) -> None:
        self._secrets = [s for s in secrets if len(s) >= ECHO_DIGITS]
        self._replacement = replacement

    def _gives_away(self, digits: str) -> bool:
        return any(digits[i:i + ECHO_DIGITS] in secret for secret in self._secrets
                   for i in range(len(digits) - ECHO_DIGITS + 1))

    def _may_give_away(self, digits: str) -> bool:
        """Whether more digits could make the run give a secret away (its end is in one)."""
        tail = digits[-(ECHO_DIGITS - 1):]
        return any(tail[k:] in secret for secret in self._secrets for k in range(len(tail)))

    def spans(self, text: str, readings: Sequence[Folded]) -> Iterator[Span]:
        if not self._secrets:
            return
        sources: list[tuple[str, Folded | None]] = [(text, None)]
        sources += [(folded.text, folded) for folded in readings if not folded.leet]
        for source, folded in sources:
            for match in _DIGIT_RUN.finditer(source):
                digits = "".join(c for c in match.group() if c.isdigit())
                start, end = match.span()
                if self._gives_away(digits):
                    yield Span(*_original(folded, start, end), self._replacement)
                elif is_open(source, end) and self._may_give_away(digits):
                    # It may still grow into an echo: held back until it ends.
                    yield Span(*_original(folded, start, end), self._replacement, False)
