"""The pure composition of a stack of layers into one plan, with provenance.

Rules:

* prompt fragments concatenate in stack order, as do post-history instructions and
  lorebooks (``profiles.lore``);
* style settings (sampling): the later layer wins;
* restrictions compose by intersection: banned words, refusal and redaction
  patterns and stop sequences are united, the maximum reply length is the smallest;
* two grammars, or a ``conflicts_with`` pair, is an error naming both layers;
  a missing ``requires`` is an error naming what to add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

from profiles.errors import CompositionError
from profiles.lore import Lorebook
from profiles.models import Layer, RedactRule, RefuseRule, Sampling

T = TypeVar("T")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A value and the name of the layer that set it."""

    value: T
    layer: str


@dataclass(frozen=True)
class ComposedPlan:
    """What the model is told and how its output is constrained, with provenance."""

    layers: tuple[str, ...]
    prompt: tuple[Sourced[str], ...] = ()
    sampling: dict[str, Sourced[Any]] = field(default_factory=dict)
    banned: tuple[Sourced[str], ...] = ()
    refuse: tuple[Sourced[RefuseRule], ...] = ()
    redact: tuple[Sourced[RedactRule], ...] = ()
    max_reply_chars: Sourced[int] | None = None
    stop: tuple[Sourced[str], ...] = ()
    grammar: Sourced[str] | None = None
    post_history: tuple[Sourced[str], ...] = ()
    """Instructions after the conversation, in stack order (soft, like the prompt)."""
    lore: tuple[Sourced[Lorebook], ...] = ()
    """Lorebooks, in stack order: their entries join the prompt when their keys come up."""

    @cached_property
    def system_prompt(self) -> str:
        """The prompt fragments joined in stack order (joined once: places share a plan)."""
        return "\n\n".join(part.value for part in self.prompt)

    def sampling_values(self) -> dict[str, Any]:
        """The sampling settings without provenance."""
        return {name: sourced.value for name, sourced in self.sampling.items()}


def compose(stack: Sequence[Layer]) -> ComposedPlan:
    """Compose an ordered stack of layers (first = bottom) into one plan.

    Raises:
        CompositionError: the stack is empty, repeats a layer, holds a conflicting
            pair or two grammars, or misses a required layer.
    """
    if not stack:
        raise CompositionError("A profile needs at least one layer; add 'base' to start from.")
    names = [layer.name for layer in stack]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CompositionError(f"Layer {name!r} appears twice in the stack; keep one.")
        seen.add(name)
    for layer in stack:
        for other in layer.conflicts_with:
            if other in seen:
                raise CompositionError(
                    f"Layers {layer.name!r} and {other!r} conflict; remove one of them."
                )
        missing = [req for req in layer.requires if req not in seen]
        if missing:
            raise CompositionError(
                f"Layer {layer.name!r} requires {', '.join(repr(m) for m in missing)}; "
                f"add {'it' if len(missing) == 1 else 'them'} to the stack."
            )

    prompt: list[Sourced[str]] = []
    sampling: dict[str, Sourced[Any]] = {}
    banned: dict[str, Sourced[str]] = {}
    refuse: list[Sourced[RefuseRule]] = []
    redact: list[Sourced[RedactRule]] = []
    stop: dict[str, Sourced[str]] = {}
    max_chars: Sourced[int] | None = None
    grammar: Sourced[str] | None = None
    post_history: list[Sourced[str]] = []
    lore: list[Sourced[Lorebook]] = []

    for layer in stack:
        if layer.prompt.strip():
            prompt.append(Sourced(layer.prompt.strip(), layer.name))
        if layer.post_history.strip():
            post_history.append(Sourced(layer.post_history.strip(), layer.name))
        if layer.lorebook is not None:
            lore.append(Sourced(layer.lorebook, layer.name))
        for key in Sampling.model_fields:
            value = getattr(layer.sampling, key)
            if value is not None:
                sampling[key] = Sourced(value, layer.name)
        rules = layer.rules
        for word in rules.banned:
            banned.setdefault(word.casefold(), Sourced(word, layer.name))
        refuse.extend(Sourced(rule, layer.name) for rule in rules.refuse)
        redact.extend(Sourced(rule, layer.name) for rule in rules.redact)
        for seq in rules.stop:
            stop.setdefault(seq, Sourced(seq, layer.name))
        if rules.max_reply_chars is not None and (
            max_chars is None or rules.max_reply_chars < max_chars.value
        ):
            max_chars = Sourced(rules.max_reply_chars, layer.name)
        if rules.grammar is not None:
            if grammar is not None:
                raise CompositionError(
                    f"Layers {grammar.layer!r} and {layer.name!r} both set an output grammar; "
                    "a stack can have only one, so remove one of them."
                )
            grammar = Sourced(rules.grammar, layer.name)

    return ComposedPlan(
        layers=tuple(names),
        prompt=tuple(prompt),
        sampling=sampling,
        banned=tuple(banned.values()),
        refuse=tuple(refuse),
        redact=tuple(redact),
        max_reply_chars=max_chars,
        stop=tuple(stop.values()),
        grammar=grammar,
        post_history=tuple(post_history),
        lore=tuple(lore),
    )
