"""Output filters applied to the stream, so banned or redacted text is never shown, and
the input check that refuses a message before the model sees it.

Both match the way a reader reads (``bot.rules``): banned words, refusal and redaction
patterns are found in every folded reading of the text (case, accents, look-alike
letters, invisible characters, emphasis inside a word, leetspeak, spelled-out letters),
and the original characters of each match are masked.

Text is released only once no rule can still match across it: the filter holds back the
unfinished last word, a window of ``holdback`` characters (and as many folded ones, at
least the longest banned phrase), and any text where a match may still be growing — a
match reaching the end of the buffer, a partial match (``example dot`` before ``com``),
a candidate a check cannot confirm yet (a card number's last digits).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.rules.checks import NUMERIC
from bot.rules.folding import base, fold_word, views
from bot.rules.matching import (
    BANNED_REPLACEMENT,
    BannedWordMatcher,
    EchoMatcher,
    Matcher,
    PatternMatcher,
    RuleSet,
    Span,
    is_open,
    merge,
    render,
)
from profiles.models import RedactRule, RefuseRule

__all__ = ["BANNED_REPLACEMENT", "OutputFilter", "refusal_for"]


def _redaction(rule: RedactRule | tuple[str, str]) -> Matcher:
    if isinstance(rule, RedactRule):
        return PatternMatcher(rule.pattern, rule.replacement, exact=rule.exact, check=rule.check)
    pattern, replacement = rule
    return PatternMatcher(pattern, replacement)


def _echoes(redactions: Iterable[tuple[RedactRule | tuple[str, str], Matcher]],
            texts: Iterable[str]) -> list[Matcher]:
    """A matcher for the digits of each number ``texts`` hold that a numeric rule finds
    (``redactions``: each rule with its matcher)."""
    numeric = [(rule, matcher) for rule, matcher in redactions
               if isinstance(rule, RedactRule) and rule.check in NUMERIC]
    secrets: dict[str, list[str]] = {}
    for text in texts if numeric else ():
        readings = views(text)
        for rule, matcher in numeric:
            for span in matcher.spans(text, readings):
                if span.complete:
                    digits = "".join(c for c in text[span.start:span.end] if c.isdigit())
                    secrets.setdefault(rule.replacement, []).append(digits)
    return [EchoMatcher(found, replacement) for replacement, found in secrets.items()]


class OutputFilter:
    """Masks banned words and redacts patterns in a streamed reply.

    Args:
        banned: banned words and phrases (folded, whole words and their inflections).
        redact: redaction rules, or ``(pattern, replacement)`` pairs (folded, not exact).
        holdback: characters always held back while the reply streams.
        echoes: what the user wrote: a number in it that a numeric redaction rule (phone,
            card, IBAN) finds is not shown back even cut or regrouped (`EchoMatcher`).
    """

    def __init__(
        self,
        banned: Iterable[str] = (),
        redact: Iterable[RedactRule | tuple[str, str]] = (),
        holdback: int = 48,
        echoes: Iterable[str] = (),
    ) -> None:
        banned = [word for word in banned if word.strip()]
        redactions = [(rule, _redaction(rule)) for rule in redact]
        matchers: list[Matcher] = [BannedWordMatcher(banned)] if banned else []
        matchers += [matcher for _, matcher in redactions]
        matchers += _echoes(redactions, echoes)
        self._rules = RuleSet(matchers)
        longest = max((len(fold_word(w)) + 1 for w in banned), default=0)
        self._holdback = max(holdback, longest)
        self._pending = ""

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def _safe_cut(self, text: str, spans: list[Span]) -> int:
        """The largest prefix length of ``text`` that can be filtered and released now."""
        cut = len(text) - self._holdback
        folded = base(text)
        if len(folded.text) > self._holdback:
            cut = min(cut, folded.starts[len(folded.text) - self._holdback])
        else:
            cut = 0
        if cut <= 0:
            return 0
        # Never release the middle of a word: back up to whitespace.
        while cut > 0 and not text[cut - 1].isspace():
            cut -= 1
        for span in spans:
            if not span.complete:
                cut = min(cut, span.start)
        complete = merge(spans)
        changed = True
        while changed and cut > 0:
            changed = False
            for span in complete:
                if span.start < cut and (cut < span.end or is_open(text, span.end)):
                    cut = span.start
                    changed = True
        return max(cut, 0)

    def feed(self, piece: str) -> str:
        """Add streamed text; returns the filtered text now safe to show."""
        if not self._rules:
            return piece
        self._pending += piece
        spans = self._rules.spans(self._pending)
        cut = self._safe_cut(self._pending, spans)
        if cut == 0:
            return ""
        released, self._pending = self._pending[:cut], self._pending[cut:]
        return render(released, [s for s in merge(spans) if s.end <= cut])

    def flush(self) -> str:
        """The end of the reply: filter and release everything held back."""
        released, self._pending = self._pending, ""
        if not self._rules:
            return released
        return render(released, merge(self._rules.spans(released)))


def refusal_for(text: str, rules: Iterable[RefuseRule | tuple[str, str]]) -> str | None:
    """The refusal message of the first rule matching ``text`` (folded unless exact)."""
    readings = None
    for rule in rules:
        if isinstance(rule, RefuseRule):
            matcher, message = PatternMatcher(rule.pattern, exact=rule.exact), rule.message
        else:
            matcher, message = PatternMatcher(rule[0]), rule[1]
        if readings is None:
            readings = views(text)
        if matcher.search(text, readings):
            return message
    return None
