"""Bounds on a stack: layers that are part of it whatever a place selects.

Two kinds bind a stack from above: the operator's *floor* (every stack, everywhere) and a
community's *locks* (every stack in that community). A bounded stack is the floor, then the
locks, then the selected layers (a selected layer that is also bound is kept once, where
it is bound). Restrictions compose by intersection, so a bound layer's banned words,
refusals, redactions, stops, grammar and length cap hold in every bounded stack; a
selected layer can only add to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from profiles.compose import ComposedPlan, compose
from profiles.models import Layer

BoundKind = Literal["floor", "lock"]


@dataclass(frozen=True)
class Bound:
    """A layer bound into every stack of its reach, and who bound it."""

    layer: Layer
    kind: BoundKind
    by: str
    """Who set it: ``the operator`` for the floor, a moderator's name for a lock."""


@dataclass(frozen=True)
class BoundConflict:
    """Why a selected layer cannot join a bounded stack."""

    layer: str
    bound: Bound
    reason: str
    """``conflicts with`` or ``sets an output grammar, as does``."""


def bounded_stack(selected: Sequence[Layer], bounds: Sequence[Bound]) -> tuple[Layer, ...]:
    """The floor, the locks, then the selected layers not bound already."""
    bound_names = {bound.layer.name for bound in bounds}
    ordered = sorted(bounds, key=lambda bound: bound.kind != "floor")
    unique: dict[str, Layer] = {}
    for bound in ordered:
        unique.setdefault(bound.layer.name, bound.layer)
    return (*unique.values(), *(layer for layer in selected if layer.name not in bound_names))


def find_conflict(selected: Sequence[Layer], bounds: Sequence[Bound]) -> BoundConflict | None:
    """The first selected layer that cannot stand beside a bound one, if any."""
    bound_names = {bound.layer.name for bound in bounds}
    for layer in selected:
        if layer.name in bound_names:
            continue
        for bound in bounds:
            other = bound.layer
            if other.name in layer.conflicts_with or layer.name in other.conflicts_with:
                return BoundConflict(layer.name, bound, "conflicts with")
            if layer.rules.grammar is not None and other.rules.grammar is not None:
                return BoundConflict(layer.name, bound, "sets an output grammar, as does")
    return None


def compose_bounded(selected: Sequence[Layer], bounds: Sequence[Bound]) -> ComposedPlan:
    """Compose ``selected`` inside its bounds (pure, like :func:`compose`).

    Raises:
        CompositionError: the bounded stack does not compose (see :func:`find_conflict`
            to learn which bound is in the way).
    """
    return compose(bounded_stack(selected, bounds))
