"""The store's domain types: who changed what, where, and what a binding holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bot.messages import Scope

Level = Literal["thread", "channel", "community"]

Place = tuple[str, str, str, str]
"""A row's (platform, community, channel, thread); empty strings for the levels above."""


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Lock:
    """A layer a community's moderators locked into every stack of that community."""

    layer: str
    by_id: str
    by_name: str
    at: float


@dataclass(frozen=True)
class CommunityAlignment:
    """What a community's alignment holds besides its bindings, as read in one query.

    Attributes:
        locks: the layers locked in the community, oldest first.
        layers: the community's own layers as (name, TOML source), by name.
        profiles: the community's own profiles as (name, description, layers), by name.
    """

    locks: tuple[Lock, ...] = ()
    layers: tuple[tuple[str, str], ...] = ()
    profiles: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class PlaceAlignment:
    """Everything alignment holds for one place, as read in one query.

    Attributes:
        bindings: the binding at each level that applies to the place.
        community: the locks, layers and profiles of the place's community.
    """

    bindings: Mapping[Level, Binding]
    community: CommunityAlignment
