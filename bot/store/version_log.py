"""The versions of alignment: each change of a place, a community layer or a community
profile kept as a numbered snapshot, written inside the change's own transaction.

A *place* version is the place's whole alignment after the change: its binding (a
profile, a layer stack, or nothing of its own) and, for a community, its locked layers.
A *layer* version is the layer's TOML source (None once deleted), a *profile* version its
description and layers. Numbers count from 1 per place, layer or profile; version 0 of a
place is how it started, with nothing set. The record functions here read the state the
transaction has just written, so a snapshot is exactly what was committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiosqlite

from bot.store.models import Actor, Place


@dataclass(frozen=True)
class Change:
    """Who made a version, when, and how (``bind``, ``lock``, ``rollback to v2`` ...)."""

    number: int
    actor_id: str
    actor_name: str
    at: float
    action: str


@dataclass(frozen=True)
class PlaceVersion:
    """A place's alignment after one change.

    Attributes:
        change: the version's number, author, time and kind.
        profile: the profile bound here, if one is.
        layers: the layer stack bound here, if one is.
        locks: a community's locked layers (None for a channel or thread).
    """

    change: Change
    profile: str | None
    layers: tuple[str, ...] | None
    locks: tuple[str, ...] | None

    @property
    def number(self) -> int:
        return self.change.number

    @property
    def binds(self) -> bool:
        """Whether the place has a setting of its own in this version."""
        return self.profile is not None or self.layers is not None

    def binding_text(self) -> str:
        """``profile 'kids'``, ``layers base, concise`` or ``nothing of its own``."""
        if self.profile is not None:
            return f"profile {self.profile!r}"
        if self.layers is not None:
            return "layers " + ", ".join(self.layers)
        return "nothing of its own (inherits)"

    def describe(self) -> str:
        """The binding, and a community's locks: ``profile 'kids'; locked: no-links``."""
        text = self.binding_text()
        if self.locks is not None:
            text += f"; locked: {', '.join(self.locks) if self.locks else 'nothing'}"
        return text

    def same_state(self, other: PlaceVersion) -> bool:
        """Whether both versions hold the same alignment."""
        return (self.profile, self.layers, self.locks) == (other.profile, other.layers,
                                                          other.locks)


@dataclass(frozen=True)
class LayerVersion:
    """A community layer's TOML source after one change (None: deleted)."""

    change: Change
    source: str | None

    @property
    def number(self) -> int:
        return self.change.number


@dataclass(frozen=True)
class ProfileVersion:
    """A community profile's definition after one change."""

    change: Change
    description: str
    layers: tuple[str, ...]

    @property
    def number(self) -> int:
        return self.change.number


def start_of(place: Place) -> PlaceVersion:
    """Version 0 of ``place``: nothing set, nothing locked."""
    community = place[2] == ""
    return PlaceVersion(Change(0, "", "", 0.0, "the start"), None, None,
                        () if community else None)


PLACE_COLUMNS = "number, actor_id, actor_name, at, action, profile, layers, locks"
LAYER_COLUMNS = "number, actor_id, actor_name, at, action, source"
PROFILE_COLUMNS = "number, actor_id, actor_name, at, action, description, layers"


def place_version(row: tuple[object, ...]) -> PlaceVersion:
    """A row of ``PLACE_COLUMNS``."""
    number, actor_id, actor_name, at, action, profile, layers, locks = row
    return PlaceVersion(
        Change(int(str(number)), str(actor_id), str(actor_name), float(str(at)), str(action)),
        str(profile) if profile is not None else None,
        tuple(json.loads(str(layers))) if layers is not None else None,
        tuple(json.loads(str(locks))) if locks is not None else None,
    )


def layer_version(row: tuple[object, ...]) -> LayerVersion:
    """A row of ``LAYER_COLUMNS``."""
    number, actor_id, actor_name, at, action, source = row
    return LayerVersion(
        Change(int(str(number)), str(actor_id), str(actor_name), float(str(at)), str(action)),
        str(source) if source is not None else None,
    )


def profile_version(row: tuple[object, ...]) -> ProfileVersion:
    """A row of ``PROFILE_COLUMNS``."""
    number, actor_id, actor_name, at, action, description, layers = row
    return ProfileVersion(
        Change(int(str(number)), str(actor_id), str(actor_name), float(str(at)), str(action)),
        str(description), tuple(json.loads(str(layers))),
    )


async def latest_place_version(db: aiosqlite.Connection, place: Place) -> PlaceVersion:
    """The newest version of ``place`` (version 0 when it never changed)."""
    rows = list(await db.execute_fetchall(
        f"SELECT {PLACE_COLUMNS} FROM place_versions WHERE platform=? AND community=? "
        "AND channel=? AND thread=? ORDER BY number DESC LIMIT 1", place,
    ))
    return place_version(tuple(rows[0])) if rows else start_of(place)


async def record_place_version(
    db: aiosqlite.Connection, at: float, place: Place, actor: Actor, action: str
) -> PlaceVersion | None:
    """Snapshot ``place`` as the write transaction left it; None if nothing changed."""
    binding = list(await db.execute_fetchall(
        "SELECT profile, layers FROM bindings WHERE platform=? AND community=? AND channel=? "
        "AND thread=?", place,
    ))
    profile, layers = (binding[0][0], binding[0][1]) if binding else (None, None)
    locks: str | None = None
    if place[2] == "":
        held = await db.execute_fetchall(
            "SELECT layer FROM locks WHERE platform=? AND community=? "
            "ORDER BY locked_at, layer", place[:2],
        )
        locks = json.dumps([row[0] for row in held])
    latest = await latest_place_version(db, place)
    number = latest.number + 1
    version = place_version((number, actor.id, actor.name, at, action, profile, layers, locks))
    if version.same_state(latest):
        return None
    await db.execute(
        f"INSERT INTO place_versions (platform, community, channel, thread, {PLACE_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*place, number, actor.id, actor.name, at, action, profile, layers, locks),
    )
    return version


async def record_layer_version(
    db: aiosqlite.Connection, at: float, platform: str, community: str, name: str,
    source: str | None, actor: Actor, action: str,
) -> int:
    """Keep a community layer's new source (None: deleted); returns its version number."""
    number = await _next_number(db, "layer_versions", platform, community, name)
    await db.execute(
        f"INSERT INTO layer_versions (platform, community, name, {LAYER_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (platform, community, name, number, actor.id, actor.name, at, action, source),
    )
    return number


async def record_profile_version(
    db: aiosqlite.Connection, at: float, platform: str, community: str, name: str,
    description: str, layers: tuple[str, ...], actor: Actor, action: str,
) -> int:
    """Keep a community profile's new definition; returns its version number."""
    number = await _next_number(db, "profile_versions", platform, community, name)
    await db.execute(
        f"INSERT INTO profile_versions (platform, community, name, {PROFILE_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (platform, community, name, number, actor.id, actor.name, at, action, description,
         json.dumps(list(layers))),
    )
    return number


async def _next_number(db: aiosqlite.Connection, table: str, platform: str, community: str,
                       name: str) -> int:
    rows = list(await db.execute_fetchall(
        f"SELECT COALESCE(MAX(number), 0) FROM {table} WHERE platform=? AND community=? "
        "AND name=?", (platform, community, name),
    ))
    return int(rows[0][0]) + 1
