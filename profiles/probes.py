"""Regression probes: a prompt, and what the reply to it must do.

A layer or a profile carries probes (``[[probes]]`` tables in a layer file,
``[[profiles.<name>.probes]]`` in a profiles file). A stack's probes are its profile's
own, then each layer's, bottom first. What a probe may ask of a reply:

* ``must_refuse``: cabot refused the prompt on input (a refusal rule of the stack
  answered it, the model never saw it);
* ``must_not_contain``: none of these words or phrases, found as the hard rules find
  banned words (folded: case, accents, look-alikes, leetspeak, spelled-out letters;
  whole words with their inflections);
* ``must_match``: a regular expression the reply matches (searched case-insensitively);
* ``max_chars``: at most this many characters.

Judging a reply needs cabot's folding, so it lives in ``bot.probes``; this module holds
the pure models.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class Probe(BaseModel):
    """One prompt and the expectations its reply must meet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    prompt: str = Field(min_length=1, max_length=2000)
    must_refuse: bool = False
    must_not_contain: tuple[str, ...] = ()
    must_match: str | None = None
    max_chars: int | None = Field(default=None, ge=1)

    @field_validator("must_match")
    @classmethod
    def _valid_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a valid regular expression ({error})") from error
        return pattern

    @field_validator("must_not_contain")
    @classmethod
    def _no_blank(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if any(not value.strip() for value in values):
            raise ValueError("entries must not be empty")
        return values

    @model_validator(mode="after")
    def _expects_something(self) -> Probe:
        if not (self.must_refuse or self.must_not_contain or self.must_match
                or self.max_chars):
            raise ValueError(
                "a probe needs at least one of must_refuse, must_not_contain, must_match "
                "or max_chars"
            )
        return self

    def expects(self) -> str:
        """The expectations in a few words: ``refused``, ``≤ 600 chars; matches ^(yes|no)$``."""
        parts = []
        if self.must_refuse:
            parts.append("refused")
        if self.must_not_contain:
            parts.append("no " + ", ".join(self.must_not_contain))
        if self.must_match:
            parts.append(f"matches {self.must_match}")
        if self.max_chars:
            parts.append(f"≤ {self.max_chars} chars")
        return "; ".join(parts)


@dataclass(frozen=True)
class OwnedProbe:
    """A probe and the layer or profile that carries it (``layer fiction``, ``profile kids``)."""

    probe: Probe
    owner: str

    @property
    def label(self) -> str:
        """``family-friendly/never-swears``."""
        return f"{self.owner.split(' ', 1)[-1]}/{self.probe.name}"


class _HasProbes(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def probes(self) -> tuple[Probe, ...]: ...


def stack_probes(
    layers: Sequence[_HasProbes], profile: _HasProbes | None = None
) -> tuple[OwnedProbe, ...]:
    """A stack's probes: the profile's own, then each layer's, bottom first."""
    owned = [OwnedProbe(probe, f"profile {profile.name}") for probe in profile.probes] \
        if profile is not None else []
    for layer in layers:
        owned.extend(OwnedProbe(probe, f"layer {layer.name}") for probe in layer.probes)
    return tuple(owned)
