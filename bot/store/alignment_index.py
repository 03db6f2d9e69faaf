"""Every binding in RAM while there are few enough, so a place not seen before needs no
query for its alignment.

A bot in 10,000 servers has a few tens of thousands of bindings (about 700 bytes each in
RAM: 30,000 take 19 MiB and load in 0.1 s) and a few communities with locks, layers or
profiles of their own. When the store
opens, `AlignmentIndex.load` reads every binding and which communities have such rows;
from then on a place's bindings come from RAM and its community is read only when it has
rows of its own (and then once, by the resolver's cache).

Every write of a community's alignment goes through `AlignmentStore`'s write transaction,
which reads the community's rows afresh inside the transaction (`AlignmentIndex.read`)
and hands them over once committed (`AlignmentIndex.install`). A community whose rows
changed some other way (a community move) is `AlignmentIndex.forget`-ed: its places are
read from SQLite again, as when the index holds nothing. Past ``limit`` bindings (or
forgotten communities) nothing is kept and every place is read.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from bot.messages import Scope
from bot.store.alignment_rows import bindings_at
from bot.store.models import Binding, Level

BINDINGS_KEPT = 50_000
"""Bindings kept in RAM at most (about 33 MiB); a store with more reads place by place."""

_ALL_SQL = (
    "SELECT platform, community, channel, thread, profile, layers, set_by, set_at "
    "FROM bindings"
)
_COMMUNITY_SQL = (
    "SELECT platform, community, channel, thread, profile, layers, set_by, set_at "
    "FROM bindings WHERE platform=? AND community=?"
)
_OWN_ROWS_SQL = (
    "SELECT DISTINCT platform, community FROM locks UNION "
    "SELECT DISTINCT platform, community FROM custom_layers UNION "
    "SELECT DISTINCT platform, community FROM custom_profiles"
)
_HAS_OWN_ROWS_SQL = (
    "SELECT EXISTS (SELECT 1 FROM locks WHERE platform=?1 AND community=?2) "
    "OR EXISTS (SELECT 1 FROM custom_layers WHERE platform=?1 AND community=?2) "
    "OR EXISTS (SELECT 1 FROM custom_profiles WHERE platform=?1 AND community=?2)"
)

Community = tuple[str, str]
_Places = dict[tuple[str, str], tuple[str, str, str, str | None, str | None, str, float]]
"""A community's bindings by (channel, thread), as rows of `bindings_from`'s shape."""


@dataclass(frozen=True, slots=True)
class Fresh:
    """A community's alignment rows as a write transaction left them (`AlignmentIndex.read`)."""

    community: Community
    places: _Places
    own_rows: bool


@dataclass(frozen=True, slots=True)
class Known:
    """A place's alignment as far as RAM knows it."""

    bindings: dict[Level, Binding]
    own_rows: bool
    """The community has locks, layers or profiles of its own: read them."""


class AlignmentIndex:
    """Every binding, and which communities have rows of their own, while few enough."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = BINDINGS_KEPT if limit is None else limit
        self._communities: dict[Community, _Places] | None = None
        """None: not loaded, or too many bindings to keep."""
        self._count = 0
        self._own_rows: set[Community] = set()
        self._forgotten: set[Community] = set()

    @property
    def kept(self) -> int:
        """How many bindings RAM holds (0 when it holds none)."""
        return self._count if self._communities is not None else 0

    async def load(self, db: aiosqlite.Connection) -> None:
        """Read every binding (under the write lock, or before any writer)."""
        self._communities, self._count = None, 0
        self._own_rows, self._forgotten = set(), set()
        own = list(await db.execute_fetchall(f"{_OWN_ROWS_SQL} LIMIT {self._limit + 1}"))
        rows = list(await db.execute_fetchall(f"{_ALL_SQL} LIMIT {self._limit + 1}"))
        if len(own) > self._limit or len(rows) > self._limit:
            return
        communities: dict[Community, _Places] = {}
        for row in rows:
            _place(communities, row)
        self._own_rows = {(str(row[0]), str(row[1])) for row in own}
        self._communities, self._count = communities, len(rows)

    def known(self, scope: Scope) -> Known | None:
        """``scope``'s bindings from RAM, or None when they must be read."""
        if self._communities is None:
            return None
        community = (scope.platform, scope.community)
        if community in self._forgotten:
            return None
        places = self._communities.get(community)
        return Known(bindings_at(scope, places) if places else {}, community in self._own_rows)

    async def read(self, db: aiosqlite.Connection, platform: str, community: str
                   ) -> Fresh | None:
        """A community's rows, inside the write transaction that changed them; None when
        they could not be read (the community is then read from the file: `forget`), so
        the write itself never fails for it."""
        if self._communities is None:
            return None
        try:
            rows = await db.execute_fetchall(_COMMUNITY_SQL, (platform, community))
            own = await db.execute_fetchall(_HAS_OWN_ROWS_SQL, (platform, community))
        except sqlite3.Error:
            return None
        places: dict[Community, _Places] = {}
        for row in rows:
            _place(places, row)
        return Fresh((platform, community), places.get((platform, community), {}),
                     bool(next(iter(own))[0]))

    def install(self, fresh: Fresh) -> None:
        """Keep what `read` found, once its transaction committed."""
        communities = self._communities
        if communities is None:
            return
        old = communities.pop(fresh.community, {})
        self._count += len(fresh.places) - len(old)
        if self._count > self._limit:
            self._communities = None
            return
        if fresh.places:
            communities[fresh.community] = fresh.places
        if fresh.own_rows:
            self._own_rows.add(fresh.community)
        else:
            self._own_rows.discard(fresh.community)
        self._forgotten.discard(fresh.community)

    def forget(self, platform: str, community: str) -> None:
        """The community's rows changed outside `read`: read its places from SQLite."""
        if self._communities is None:
            return
        self._count -= len(self._communities.pop((platform, community), {}))
        self._forgotten.add((platform, community))
        if len(self._forgotten) > self._limit:
            self._communities = None


def _place(communities: dict[Community, _Places], row: Sequence[Any]) -> None:
    platform, community, channel, thread, profile, layers, set_by, set_at = row
    key = (sys.intern(platform), community)
    places = communities.get(key)
    if places is None:
        places = communities[key] = {}
    places[(channel, thread)] = (
        "binding", channel, thread, None if profile is None else sys.intern(profile),
        layers, sys.intern(set_by), set_at)
