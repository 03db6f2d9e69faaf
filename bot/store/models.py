"""The store's domain types: who changed what, where, and what a binding holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.messages import Scope

Level = Literal["thread", "channel", "community"]

Place = tuple[str, str, str, str]
"""A row's (platform, community, channel, thread); empty strings for the levels above."""


@dataclass(frozen=True)
class Binding:
    """A profile (or an explicit layer stack) bound to one scope level."""

    level: Level
    profile: str | None
    layers: tuple[str, ...] | None
    set_by: str
    set_at: float

    def describe(self) -> str:
        """``profile 'kids'`` or ``layers base, concise``."""
        if self.profile is not None:
            return f"profile {self.profile!r}"
        return "layers " + ", ".join(self.layers or ())


@dataclass(frozen=True)
class AuditEntry:
    """One recorded profile change."""

    at: float
    scope: Scope
    actor_id: str
    actor_name: str
    action: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the audit log."""

    id: str
    name: str


@dataclass(frozen=True)
class Lock:
    """A layer a community's moderators locked into every stack of that community."""

    layer: str
    by_id: str
    by_name: str
    at: float
