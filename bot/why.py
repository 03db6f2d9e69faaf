"""Which hard rules acted on a reply, and where: the record behind ``/profile why``.

After each reply, the rules of its plan are matched once more against the raw text the
model generated, one rule at a time, so each action is attributed to its rule and layer:
a banned word masked in the stream filter, a redaction applied, the length cap cutting
the reply, a refusal on input, a grammar shaping the reply at sampling. The latest report
of each place is kept in memory (a bounded cache; nothing here is stored on disk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lru import LRU

from bot.backends.base import SamplingRule
from bot.messages import Scope
from bot.rules.folding import views
from bot.rules.matching import BannedWordMatcher, Matcher, PatternMatcher, merge
from profiles import ComposedPlan

PLACES = 4096
"""Places whose latest report is kept."""


@dataclass(frozen=True)
class RuleAction:
    """One rule that acted on a reply.

    Attributes:
        kind: ``banned``, ``redact``, ``refuse``, ``length`` or ``grammar``.
        rule: what the rule is (a banned word, a pattern, a cap).
        layer: the layer it came from.
        where: where it acted (``stream``, ``input``, ``sampling``).
        count: how many times it acted.
    """

    kind: str
    rule: str
    layer: str
    where: str
    count: int = 1


@dataclass(frozen=True)
class ReplyReport:
    """What the rules did to the latest reply in a place."""

    at: float
    """Wall-clock time of the reply."""
    actions: tuple[RuleAction, ...]
    sampling: frozenset[SamplingRule]
    """The rules the backend applied at sampling while generating it."""
    banned_at_sampling: tuple[tuple[str, str], ...] = ()
    """(word, layer) of every banned word whose tokens were forbidden at sampling."""


def refusal_report(plan: ComposedPlan, text: str, sampling: frozenset[SamplingRule],
                   clock: Callable[[], float] = time.time) -> ReplyReport:
    """The report of a message refused on input (the first matching rule, as refused)."""
    readings = views(text)
    for sourced in plan.refuse:
        rule = sourced.value
        if PatternMatcher(rule.pattern, exact=rule.exact).search(text, readings):
            action = RuleAction("refuse", rule.pattern, sourced.layer, "input")
            return ReplyReport(clock(), (action,), sampling)
    return ReplyReport(clock(), (), sampling)


def reply_report(
    plan: ComposedPlan,
    raw: str,
    *,
    cut: bool,
    sampling: frozenset[SamplingRule],
    clock: Callable[[], float] = time.time,
) -> ReplyReport:
    """The rules that acted on a reply whose model text was ``raw``.

    ``cut`` says whether the length cap shortened it.
    """
    # Folded readings only for the rules that read them (no rule: nothing to fold).
    readings = views(raw) if raw and (plan.banned or plan.redact) else []
    actions: list[RuleAction] = []
    matchers: list[tuple[str, str, str, Matcher]] = [
        ("banned", s.value, s.layer, BannedWordMatcher([s.value])) for s in plan.banned
    ]
    matchers += [
        ("redact", s.value.pattern, s.layer,
         PatternMatcher(s.value.pattern, s.value.replacement, exact=s.value.exact,
                        check=s.value.check))
        for s in plan.redact
    ]
    for kind, rule, layer, matcher in matchers:
        count = len(merge(matcher.spans(raw, readings))) if raw else 0
        if count:
            actions.append(RuleAction(kind, rule, layer, "stream", count))
    if cut and plan.max_reply_chars is not None:
        actions.append(RuleAction("length", str(plan.max_reply_chars.value),
                                  plan.max_reply_chars.layer, "stream"))
    if plan.grammar is not None and "grammar" in sampling:
        actions.append(RuleAction("grammar", plan.grammar.value, plan.grammar.layer,
                                  "sampling"))
    at_sampling = tuple((s.value, s.layer) for s in plan.banned) if "banned" in sampling else ()
    return ReplyReport(clock(), tuple(actions), sampling, at_sampling)


@dataclass(frozen=True, slots=True)
class _Reply:
    """What a reply's report is made from, kept until ``/profile why`` asks for it."""

    plan: ComposedPlan
    raw: str
    cut: bool
    sampling: frozenset[SamplingRule]
    at: float

    def report(self) -> ReplyReport:
        return reply_report(self.plan, self.raw, cut=self.cut, sampling=self.sampling,
                            clock=lambda: self.at)


class ReplyReports:
    """The latest report of each place (bounded; lost on restart, like the reply itself).

    A reply's report is built when it is asked for, from what the reply kept: most
    reports are never read, and every reply would otherwise match its rules twice.
    """

    def __init__(self, places: int = PLACES, clock: Callable[[], float] = time.time) -> None:
        self._latest: LRU[str, ReplyReport | _Reply] = LRU(places)
        self._clock = clock

    def record(self, scope: Scope, report: ReplyReport) -> None:
        self._latest[scope.key()] = report

    def record_reply(self, scope: Scope, plan: ComposedPlan, raw: str, *, cut: bool,
                     sampling: frozenset[SamplingRule]) -> None:
        """Keep what `reply_report` needs for a reply whose model text was ``raw``."""
        self._latest[scope.key()] = _Reply(plan, raw, cut, sampling, self._clock())

    def latest(self, scope: Scope) -> ReplyReport | None:
        kept = self._latest.get(scope.key())
        if isinstance(kept, _Reply):
            kept = kept.report()
            self._latest[scope.key()] = kept
        return kept
