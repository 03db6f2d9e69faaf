"""A member's personal layers, composed on top of a place's stack for their replies only.

A personal stack is the place's bounded stack (the operator's floor, the community's locks,
the place's selection) with the member's layers added on top. Composition only adds
restrictions (banned words, refusals, redactions and stops are united, the length cap is
the smallest, a second grammar is an error), so a personal layer can never loosen what the
place enforces. One style setting bounds cost and is kept as a bound too: a personal layer
may shorten replies (``max_tokens``) but not lengthen them past the place's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from profiles.compose import ComposedPlan, Sourced, compose
from profiles.errors import CompositionError
from profiles.models import Layer


@dataclass(frozen=True)
class PersonalConflict:
    """Why a personal layer cannot join a place's stack."""

    layer: str
    other: str
    """The layer of the place's stack in the way."""
    reason: str
    """``conflicts with`` or ``sets an output grammar, as does``."""


def personal_additions(place: Sequence[Layer], personal: Sequence[Layer]) -> tuple[Layer, ...]:
    """The personal layers the place's stack does not hold already, in the member's order."""
    held = {layer.name for layer in place}
    added: dict[str, Layer] = {}
    for layer in personal:
        if layer.name not in held:
            added.setdefault(layer.name, layer)
    return tuple(added.values())


def find_personal_conflict(
    place: Sequence[Layer], personal: Sequence[Layer]
) -> PersonalConflict | None:
    """The first personal layer that cannot stand on top of ``place``, if any."""
    stack = list(place)
    for layer in personal_additions(place, personal):
        for other in stack:
            if other.name in layer.conflicts_with or layer.name in other.conflicts_with:
                return PersonalConflict(layer.name, other.name, "conflicts with")
            if layer.rules.grammar is not None and other.rules.grammar is not None:
                return PersonalConflict(layer.name, other.name,
                                        "sets an output grammar, as does")
        stack.append(layer)
    return None


def compose_personal(
    place: Sequence[Layer], place_plan: ComposedPlan, personal: Sequence[Layer]
) -> tuple[tuple[Layer, ...], ComposedPlan]:
    """The personal stack and its plan: ``place`` (composed as ``place_plan``) plus
    ``personal`` on top. Pure, like :func:`compose`.

    Raises:
        CompositionError: a personal layer clashes with the place's stack or needs a
            layer it does not hold (see :func:`find_personal_conflict`).
    """
    added = personal_additions(place, personal)
    if not added:
        return tuple(place), place_plan
    stack = (*place, *added)
    plan = compose(stack)
    bound = place_plan.sampling.get("max_tokens")
    mine = plan.sampling.get("max_tokens")
    if bound is not None and mine is not None and mine.value > bound.value:
        sampling: dict[str, Sourced[object]] = {**plan.sampling, "max_tokens": bound}
        plan = replace(plan, sampling=sampling)
    return stack, plan


def check_personal(place: Sequence[Layer], personal: Sequence[Layer]) -> None:
    """Raise when ``personal`` cannot be composed on top of ``place``.

    Raises:
        CompositionError: naming the personal layer and what is in its way.
    """
    conflict = find_personal_conflict(place, personal)
    if conflict is not None:
        raise CompositionError(
            f"Layer {conflict.layer!r} {conflict.reason} {conflict.other!r}, which the "
            "stack here includes."
        )
    compose((*place, *personal_additions(place, personal)))
