"""Output filters applied to the stream, so banned or redacted text is never shown.

Text is released only once no banned phrase or redaction pattern can still match across
it: the filter holds back the unfinished last word and a window as long as the longest
banned phrase (``holdback`` characters at least), and a match touching the end of the
buffer is held until it is complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

BANNED_REPLACEMENT = "▇▇▇"


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    replacement: str


def _banned_regex(phrase: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in phrase.split()]
    body = r"\s+".join(words)
    # Like generation-time banning: a word that starts with a banned word is banned too.
    return re.compile(rf"(?<!\w){body}\w*", re.IGNORECASE)


class OutputFilter:
    """Redacts banned phrases and redaction patterns from a streamed reply."""

    def __init__(
        self,
        banned: Iterable[str] = (),
        redact: Iterable[tuple[str, str]] = (),
        holdback: int = 48,
    ) -> None:
        banned = list(banned)
        self._rules = [_Rule(_banned_regex(p), BANNED_REPLACEMENT) for p in banned]
        self._rules += [_Rule(re.compile(p, re.IGNORECASE), r) for p, r in redact]
        self._holdback = max([holdback, *(len(p) + 1 for p in banned)])
        self._pending = ""

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def _apply(self, text: str) -> str:
        for rule in self._rules:
            text = rule.regex.sub(rule.replacement, text)
        return text

    def _safe_cut(self, text: str) -> int:
        """The largest prefix length of ``text`` that can be filtered and released now."""
        cut = len(text) - self._holdback
        if cut <= 0:
            return 0
        # Never release the middle of a word: back up to whitespace.
        while cut > 0 and not text[cut - 1].isspace():
            cut -= 1
        changed = True
        while changed and cut > 0:
            changed = False
            for rule in self._rules:
                for match in rule.regex.finditer(text):
                    if match.start() < cut < match.end() or (
                        match.start() < cut and match.end() == len(text)
                    ):
                        cut = match.start()
                        changed = True
        return cut

    def feed(self, piece: str) -> str:
        """Add streamed text; returns the filtered text now safe to show."""
        if not self._rules:
            return piece
        self._pending += piece
        cut = self._safe_cut(self._pending)
        if cut == 0:
            return ""
        released, self._pending = self._pending[:cut], self._pending[cut:]
        return self._apply(released)

    def flush(self) -> str:
        """The end of the reply: filter and release everything held back."""
        released, self._pending = self._pending, ""
        return self._apply(released)


def refusal_for(text: str, rules: Iterable[tuple[str, str]]) -> str | None:
    """The refusal message of the first ``(pattern, message)`` matching ``text``, if any."""
    for pattern, message in rules:
        if re.search(pattern, text, re.IGNORECASE):
            return message
    return None
