"""Pydantic models of layers and profiles."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from profiles.lore import Lorebook
from profiles.probes import Probe

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(_Strict):
    """Style settings: when layers disagree, the later layer wins."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0, le=1000)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(default=None, ge=0.5, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error})") from error
    return pattern


class RefuseRule(_Strict):
    """Refuse a message matching ``pattern`` (case-insensitive) with ``message``.

    The pattern is matched against the message as written and as a reader reads it
    (accents, look-alike letters, leetspeak, spelled-out letters folded away) unless
    ``exact`` is set.
    """

    pattern: str
    message: str = "I can't help with that here."
    exact: bool = False

    _valid = field_validator("pattern")(_check_regex)


RedactCheck = Literal["luhn", "iban", "phone", "domain"]
"""Named checks a redaction candidate must pass (a regular expression cannot do them):
``luhn`` a payment card number, ``iban`` an IBAN (length and mod-97), ``phone`` a phone
number (digit count and shape, not a date or a year), ``domain`` a known top-level domain."""


class RedactRule(_Strict):
    """Replace text matching ``pattern`` (case-insensitive) in replies with ``replacement``.

    Matched as written and folded (see ``RefuseRule``) unless ``exact``; with ``check``,
    a match is redacted only if it passes that check.
    """

    pattern: str
    replacement: str = "[removed]"
    exact: bool = False
    check: RedactCheck | None = None

    _valid = field_validator("pattern")(_check_regex)


class Rules(_Strict):
    """Hard rules: restrictions that compose by intersection."""

    banned: tuple[str, ...] = ()
    refuse: tuple[RefuseRule, ...] = ()
    redact: tuple[RedactRule, ...] = ()
    max_reply_chars: int | None = Field(default=None, ge=1)
    stop: tuple[str, ...] = ()
    grammar: str | None = None

    @field_validator("banned", "stop")
    @classmethod
    def _no_blank(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if any(not v.strip() for v in values):
            raise ValueError("entries must not be empty")
        return values


class Layer(_Strict):
    """One small, named piece of alignment."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1, max_length=200)
    version: str = "1"
    prompt: str = ""
    sampling: Sampling = Sampling()
    rules: Rules = Rules()
    requires: tuple[str, ...] = ()
    conflicts_with: tuple[str, ...] = ()
    post_history: str = ""
    """Instructions placed after the conversation, just before the model answers (a
    character card's post-history instructions)."""
    lorebook: Lorebook | None = None
    """Prompt fragments that enter only when their keys come up (``profiles.lore``)."""
    probes: tuple[Probe, ...] = ()
    """What replies under this layer must do (``profiles.probes``)."""


class Profile(_Strict):
    """A named, ordered stack of layers."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    layers: tuple[str, ...] = Field(min_length=1)
    probes: tuple[Probe, ...] = ()
    """What replies under this profile must do (``profiles.probes``)."""
