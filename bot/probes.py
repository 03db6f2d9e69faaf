"""Running a stack's regression probes through the shared queue, and judging the replies.

Each probe is answered as a chat message would be, in a conversation of its own: refused
on input by the plan's refusal rules, else prepared (lorebook entries, post-history
instructions, the prompt fitted to the context window), queued at low priority (a
background job: it waits until no one's reply is waiting, takes no part in members' rate
limits) and filtered like any reply (banned words masked, redactions applied, the length
cap). Probes run one after another, so a switch never puts more than one job in line.
Nothing is shown in a channel and nothing is remembered.

A reply passes when it meets every expectation of its probe (``profiles.probes``):
``must_not_contain`` is judged as the hard rules judge banned words (folded, whole words
and their inflections), so a probe can only pass because cabot holds the rule.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import regex

from bot.errors import InferenceError
from bot.filters import refusal_for
from bot.lore import post_history_cost, system_prompt_for, with_post_history
from bot.prompt_fit import PromptBudget, fit_prompt
from bot.queue import InferenceQueue
from bot.reply import ChatLimits, PreparedReply, build_request, cut_to_length
from bot.rules.folding import views
from bot.rules.matching import BannedWordMatcher
from profiles import ComposedPlan
from profiles.probes import OwnedProbe, Probe

PROBE_USER = "cabot:probes"
"""Who the queue sees asking for probe replies."""
PROBE_SEED = 7
"""Probes sample with a fixed seed, so a probe's reply is the same from run to run."""


def judge(probe: Probe, reply: str, refused: bool) -> tuple[str, ...]:
    """What ``reply`` fails of ``probe`` (empty when it passes)."""
    failures = []
    if probe.must_refuse and not refused:
        failures.append("was not refused")
    if probe.must_not_contain:
        readings = views(reply)
        found = [word for word in probe.must_not_contain
                 if BannedWordMatcher([word]).search(reply, readings)]
        if found:
            failures.append("contains " + ", ".join(repr(word) for word in found))
    if probe.must_match is not None and not regex.search(
            probe.must_match, reply, regex.IGNORECASE | regex.VERSION0):
        failures.append(f"does not match {probe.must_match}")
    if probe.max_chars is not None and len(reply) > probe.max_chars:
        failures.append(f"{len(reply)} characters, more than {probe.max_chars}")
    return tuple(failures)


@dataclass(frozen=True)
class ProbeResult:
    """One probe's reply and verdict.

    Attributes:
        owned: the probe and the layer or profile that carries it.
        reply: the reply as a member would have seen it (or the refusal).
        refused: cabot refused the prompt on input.
        failures: the expectations the reply missed; empty when it passed.
        error: why no reply could be generated, if none could.
    """

    owned: OwnedProbe
    reply: str
    refused: bool = False
    failures: tuple[str, ...] = ()
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    def verdict(self) -> str:
        """``pass``, or ``FAIL: contains 'damn'``."""
        if self.error is not None:
            return f"FAIL: no reply ({self.error})"
        return "pass" if self.passed else "FAIL: " + "; ".join(self.failures)


class ProbeRunner:
    """Answers probes through the shared queue at low priority, one at a time.

    Args:
        queue: the shared inference queue.
        count_tokens: the backend's token counter.
        limits: the context and reply limits of chat replies.
    """

    def __init__(self, queue: InferenceQueue, count_tokens: Callable[[str], int],
                 limits: ChatLimits) -> None:
        self._queue = queue
        self._count = count_tokens
        self._limits = limits
        self._ids = itertools.count(1)

    async def run(self, plan: ComposedPlan, probes: Iterable[OwnedProbe], place: str
                  ) -> tuple[ProbeResult, ...]:
        """Every probe's result under ``plan``, in order; ``place`` names the queue channel."""
        return tuple([await self.run_one(plan, owned, place) for owned in probes])

    async def run_one(self, plan: ComposedPlan, owned: OwnedProbe, place: str) -> ProbeResult:
        """One probe's reply under ``plan``, judged."""
        prompt = owned.probe.prompt
        refusal = refusal_for(prompt, [s.value for s in plan.refuse])
        if refusal is not None:
            return ProbeResult(owned, refusal, True, judge(owned.probe, refusal, True))
        prepared = self._prepare(plan, prompt, place)
        try:
            job = self._queue.submit(prepared.request, f"{place}#probes", PROBE_USER,
                                     priority="low")
        except InferenceError as error:
            return ProbeResult(owned, "", error=str(error))
        output = prepared.output_filter()
        limit = prepared.length_cap
        visible = ""
        failure: str | None = None
        try:
            async for event in job.events():
                if event.kind == "text":
                    visible += output.feed(event.text)
                    if limit is not None and len(visible) >= limit:
                        break
                elif event.kind == "error" and event.error is not None:
                    failure = str(event.error)
        finally:
            if not job.finished:
                job.cancel()
        visible += output.flush()
        if limit is not None:
            visible = cut_to_length(visible, limit)
        reply = visible.strip()
        if failure is not None and not reply:
            return ProbeResult(owned, "", error=failure)
        return ProbeResult(owned, reply, False, judge(owned.probe, reply, False))

    def _prepare(self, plan: ComposedPlan, prompt: str, place: str) -> PreparedReply:
        limits = self._limits
        budget = PromptBudget(limits.n_ctx, limits.reply_room(plan))
        budget = dataclasses.replace(
            budget, margin=budget.margin + post_history_cost(plan, self._count))
        system = system_prompt_for(plan, [prompt], self._count)
        fitted = fit_prompt(system, (), prompt, budget, self._count)
        session = f"{place}#probe{next(self._ids)}"
        request = build_request(plan, with_post_history(fitted.messages, plan),
                                budget.reply_tokens, session)
        return PreparedReply(plan, fitted, dataclasses.replace(request, seed=PROBE_SEED))


def summarise(results: Sequence[ProbeResult], limit: int = 200) -> str:
    """Chat lines: ``✅ 3 of 4 probes passed`` and one line per failing probe."""
    failed = [result for result in results if not result.passed]
    total = len(results)
    head = (f"❌ {len(failed)} of {total} probe{'s' if total != 1 else ''} failed:" if failed
            else "✅ The probe passed." if total == 1 else f"✅ All {total} probes passed.")
    lines = [head]
    for result in failed:
        reply = result.reply if len(result.reply) <= limit else result.reply[:limit - 1] + "…"
        lines.append(f"- {result.owned.label} ({result.owned.probe.expects()}): "
                     f"{result.verdict()} — the reply: {reply!r}")
    return "\n".join(lines)
