"""What changes between two composed plans: a pure function, for ``/profile diff``.

`diff_plans` compares plan ``a`` with plan ``b`` and says what ``a`` adds and what it
removes: layers, prompt fragments, sampling values and hard rules, each with the layer it
comes from (the layer in ``a`` for what is added or changed to, in ``b`` for what is
removed or changed from). Nothing here does I/O or knows where the plans came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from profiles.compose import ComposedPlan, Sourced
from profiles.models import Sampling


@dataclass(frozen=True)
class SamplingChange:
    """One sampling setting whose value differs (None: not set, the engine's default)."""

    key: str
    old: Sourced[Any] | None
    new: Sourced[Any] | None


@dataclass(frozen=True)
class RuleChange:
    """One hard rule only one side has.

    Attributes:
        kind: ``banned``, ``refuse``, ``redact``, ``stop``, ``max_reply_chars`` or
            ``grammar``.
        rule: what the rule is: the word, the pattern, the stop sequence, the cap.
        detail: what it does besides (a refusal's message, a redaction's replacement).
        layer: the layer it comes from, on its side.
    """

    kind: str
    rule: str
    layer: str
    detail: str = ""


@dataclass(frozen=True)
class PlanDiff:
    """What plan ``a`` adds to and removes from plan ``b``."""

    layers_added: tuple[str, ...] = ()
    layers_removed: tuple[str, ...] = ()
    reordered: bool = False
    """Both have the same layers, in another order (prompt order and which layer's
    sampling wins may differ)."""
    prompt_added: tuple[Sourced[str], ...] = ()
    prompt_removed: tuple[Sourced[str], ...] = ()
    sampling: tuple[SamplingChange, ...] = ()
    rules_added: tuple[RuleChange, ...] = ()
    rules_removed: tuple[RuleChange, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the two plans tell the model, and constrain it, the same way."""
        return not (self.layers_added or self.layers_removed or self.reordered
                    or self.prompt_added or self.prompt_removed or self.sampling
                    or self.rules_added or self.rules_removed)


def diff_plans(a: ComposedPlan, b: ComposedPlan) -> PlanDiff:
    """What ``a`` adds to ``b`` and removes from it."""
    in_a, in_b = set(a.layers), set(b.layers)
    common = [name for name in a.layers if name in in_b]
    common_b = [name for name in b.layers if name in in_a]
    a_prompts = {part.value for part in a.prompt}
    b_prompts = {part.value for part in b.prompt}
    sampling = []
    for key in Sampling.model_fields:
        new, old = a.sampling.get(key), b.sampling.get(key)
        if (new.value if new else None) != (old.value if old else None):
            sampling.append(SamplingChange(key, old, new))
    rules_a, rules_b = _rules(a), _rules(b)
    return PlanDiff(
        layers_added=tuple(name for name in a.layers if name not in in_b),
        layers_removed=tuple(name for name in b.layers if name not in in_a),
        reordered=common != common_b,
        prompt_added=tuple(part for part in a.prompt if part.value not in b_prompts),
        prompt_removed=tuple(part for part in b.prompt if part.value not in a_prompts),
        sampling=tuple(sampling),
        rules_added=tuple(rule for key, rule in rules_a.items() if key not in rules_b),
        rules_removed=tuple(rule for key, rule in rules_b.items() if key not in rules_a),
    )


def _rules(plan: ComposedPlan) -> dict[tuple[str, ...], RuleChange]:
    """Every hard rule of ``plan``, keyed by what it does (not by where it comes from)."""
    found: dict[tuple[str, ...], RuleChange] = {}
    for word in plan.banned:
        found[("banned", word.value.casefold())] = RuleChange("banned", word.value, word.layer)
    for refuse in plan.refuse:
        rule = refuse.value
        found[("refuse", rule.pattern, rule.message, str(rule.exact))] = RuleChange(
            "refuse", rule.pattern, refuse.layer, rule.message)
    for redact in plan.redact:
        red = redact.value
        found[("redact", red.pattern, red.replacement, str(red.exact), red.check or "")] = (
            RuleChange("redact", red.pattern, redact.layer, red.replacement))
    for stop in plan.stop:
        found[("stop", stop.value)] = RuleChange("stop", stop.value, stop.layer)
    if plan.max_reply_chars is not None:
        cap = plan.max_reply_chars
        found[("max_reply_chars", str(cap.value))] = RuleChange(
            "max_reply_chars", str(cap.value), cap.layer)
    if plan.grammar is not None:
        found[("grammar", plan.grammar.value)] = RuleChange(
            "grammar", plan.grammar.value, plan.grammar.layer)
    return found
