"""A place's alignment as rows: the queries that read it in one, and their rows parsed.

Each part of a place's alignment comes as rows of one shape, a kind and then six values,
so a place's bindings and its community's locks, layers and profiles are one query
(`PLACE_SQL`) and one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.errors import StoreError
from bot.messages import Scope
from bot.store.models import Binding, CommunityAlignment, Level, Lock, Place, PlaceAlignment

# Each part of a place's alignment, as rows of one shape: a kind, then six values.
# ?1 platform, ?2 community, ?3 channel, ?4 thread ('' for none).
BINDINGS_SQL = (
    "SELECT 'binding', channel, thread, profile, layers, set_by, set_at FROM bindings "
    "WHERE platform=?1 AND community=?2 AND channel IN ('', ?3) AND thread IN ('', ?4)"
)
COMMUNITY_SQL = (
    "SELECT 'lock', layer, locked_by_id, locked_by, locked_at, NULL, NULL FROM locks "
    "WHERE platform=?1 AND community=?2 "
    "UNION ALL SELECT 'layer', name, source, NULL, NULL, NULL, NULL FROM custom_layers "
    "WHERE platform=?1 AND community=?2 "
    "UNION ALL SELECT 'profile', name, description, layers, NULL, NULL, NULL "
    "FROM custom_profiles WHERE platform=?1 AND community=?2"
)


def level_place(scope: Scope, level: Level) -> Place:
    """The row key of ``level`` above (or at) ``scope``.

    Raises:
        StoreError: ``level`` is ``thread`` and ``scope`` has no thread.
    """
    if level == "community":
        return scope.platform, scope.community, "", ""
    if level == "channel":
        return scope.platform, scope.community, scope.channel, ""
    if scope.thread is None:
        raise StoreError("This place has no thread; bind the channel instead.")
    return scope.platform, scope.community, scope.channel, scope.thread


def binding_from(level: Level, profile: str | None, layers: str | None, set_by: str,
             set_at: float) -> Binding:
    return Binding(level, profile, tuple(json.loads(layers)) if layers is not None else None,
                   set_by, set_at)


def place_params(scope: Scope) -> tuple[str, str, str, str]:
    return scope.platform, scope.community, scope.channel, scope.thread or ""


def levels(scope: Scope) -> tuple[Level, ...]:
    """The levels that apply to ``scope``, broadest first."""
    return ("community", "channel", "thread") if scope.thread is not None else (
        "community", "channel")


def bindings_from(scope: Scope, rows: Iterable[tuple[Any, ...]]) -> dict[Level, Binding]:
    """The binding at each level of ``scope``, from rows of ``BINDINGS_SQL``."""
    return bindings_at(scope, {(row[1], row[2]): row for row in rows})


def bindings_at(scope: Scope, at: Mapping[tuple[str, str], Sequence[Any]]
                ) -> dict[Level, Binding]:
    """The binding at each level of ``scope``, from rows of ``BINDINGS_SQL`` by (channel,
    thread)."""
    found: dict[Level, Binding] = {}
    for level in levels(scope):
        row = at.get(level_place(scope, level)[2:])
        if row is not None:
            found[level] = binding_from(level, *row[3:])
    return found


def community_from(rows: Iterable[tuple[Any, ...]]) -> CommunityAlignment:
    """A community's locks, layers and profiles, from rows of ``COMMUNITY_SQL``."""
    locks: list[Lock] = []
    layers: list[tuple[str, str]] = []
    profiles: list[tuple[str, str, tuple[str, ...]]] = []
    for kind, first, second, third, fourth, _, _ in rows:
        if kind == "lock":
            locks.append(Lock(first, second, third, fourth))
        elif kind == "layer":
            layers.append((first, second))
        elif kind == "profile":
            profiles.append((first, second, tuple(json.loads(third))))
    # The order each part's own query gives it (SQLite's BINARY order is code point order).
    return CommunityAlignment(
        locks=tuple(sorted(locks, key=lambda lock: (lock.at, lock.layer))),
        layers=tuple(sorted(layers)),
        profiles=tuple(sorted(profiles, key=lambda profile: profile[0])),
    )


PLACE_SQL = f"{BINDINGS_SQL} UNION ALL {COMMUNITY_SQL}"


NO_OWN_ROWS = CommunityAlignment()
"""What most communities hold besides bindings (one value for all of them)."""


def place_from(scope: Scope, rows: list[tuple[Any, ...]]) -> PlaceAlignment:
    """A place's alignment from the rows of `PLACE_SQL`."""
    others = [row for row in rows if row[0] != "binding"]
    return PlaceAlignment(
        bindings=bindings_from(scope, (row for row in rows if row[0] == "binding")),
        community=community_from(others) if others else NO_OWN_ROWS,
    )


