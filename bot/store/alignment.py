"""Alignment data: profile bindings per place, community layers and profiles, the audit log.

Every change commits durably (``synchronous=FULL``) together with its audit row, and bumps
`AlignmentStore.generation` (and the community's `AlignmentStore.changed_at`) so readers
can cache what they derive from this data.

Reads are one ``aiosqlite`` call each (``execute_fetchall``): a call is a round trip to
the connection's thread, and a place's whole alignment is read in one (`place_alignment`).
While there are few enough, every binding is also kept in RAM (`bot.store.alignment_index`)
and a place's alignment costs no query unless its community has rows of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import aiosqlite

from bot.messages import Scope
from bot.store.alignment_index import AlignmentIndex, Fresh
from bot.store.alignment_rows import (
    BINDINGS_SQL,
    COMMUNITY_SQL,
    NO_OWN_ROWS,
    PLACE_SQL,
    binding_from,
    bindings_from,
    community_from,
    level_place,
    place_from,
    place_params,
)
from bot.store.connection import Database
from bot.store.models import (
    Actor,
    AuditEntry,
    Binding,
    CommunityAlignment,
    Level,
    Lock,
    Place,
    PlaceAlignment,
)
from bot.store.reads import Read
from bot.store.version_log import (
    record_layer_version,
    record_place_version,
    record_profile_version,
)

__all__ = ["AlignmentStore", "level_place", "record_audit"]

CHANGES_KEPT = 16_384
"""Communities whose latest alignment change is remembered one by one; past that the
record starts afresh, as if every community had just changed."""

async def record_audit(
    db: aiosqlite.Connection,
    at: float,
    place: Place,
    actor: Actor,
    action: str,
    old: str | None,
    new: str | None,
) -> None:
    """Add one row to the audit log, inside the caller's write transaction."""
    await db.execute(
        "INSERT INTO audit (at, platform, community, channel, thread, actor_id, "
        "actor_name, action, old, new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (at, *place, actor.id, actor.name, action, old, new),
    )


async def _binding_at(db: aiosqlite.Connection, place: Place, level: Level) -> Binding | None:
    rows = list(await db.execute_fetchall(
        "SELECT profile, layers, set_by, set_at FROM bindings "
        "WHERE platform=? AND community=? AND channel=? AND thread=?",
        place,
    ))
    return binding_from(level, *rows[0]) if rows else None


class AlignmentStore:
    """Bindings, community layers and profiles, and the audit log of their changes."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        self.generation = 0
        """Bumped after every write to bindings, locks or community layers and profiles, so
        readers can cache what they derive from them (this process is the only writer)."""
        self._changed: dict[tuple[str, str], int] = {}
        self._forgotten = 0
        self._index = AlignmentIndex()

    async def load(self) -> None:
        """Keep every binding in RAM, if few enough (when the store opens)."""
        async with self._database.locked() as db:
            await self._index.load(db)

    @property
    def bindings_kept(self) -> int:
        """How many bindings RAM holds (`bot.store.alignment_index`)."""
        return self._index.kept

    def changed_at(self, platform: str, community: str) -> int:
        """The `generation` its latest alignment write left (an upper bound).

        What was derived from reads begun at generation ``g`` still holds for places of
        this community while this is at most ``g``: a write elsewhere does not change it.
        """
        return self._changed.get((platform, community), self._forgotten)

    def mark_changed(self, platform: str, *communities: str) -> None:
        """Bump `generation`, and record that these communities' alignment changed."""
        self.generation += 1
        for community in communities:
            self._index.forget(platform, community)
        if len(self._changed) + len(communities) > CHANGES_KEPT:
            self._changed.clear()
            self._forgotten = self.generation  # every community may have changed
        for community in communities:
            self._changed[(platform, community)] = self.generation

    @asynccontextmanager
    async def _write(self, platform: str, community: str
                     ) -> AsyncIterator[aiosqlite.Connection]:
        fresh: Fresh | None = None
        try:
            async with self._database.transaction(durable=True) as db:
                yield db
                fresh = await self._index.read(db, platform, community)
        finally:
            # Any write, even one whose COMMIT was interrupted, invalidates what readers
            # derived from the data before it.
            self.mark_changed(platform, community)
        if fresh is not None:  # committed
            self._index.install(fresh)

    def write(self, platform: str, community: str
              ) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """A durable write transaction of a community's alignment, for the store's other
        parts (`bot.store.versions`): readers see the change like any other."""
        return self._write(platform, community)

    # -- a place's whole alignment --------------------------------------------------

    async def place_alignment(self, scope: Scope) -> PlaceAlignment:
        """The bindings that apply to ``scope`` and its community's locks, layers and
        profiles, in one query (none when RAM holds the bindings and the community has no
        rows of its own)."""
        known = self._index.known(scope)
        if known is not None:
            return PlaceAlignment(known.bindings, await self.community_alignment(
                scope.platform, scope.community) if known.own_rows else NO_OWN_ROWS)
        return place_from(scope, [tuple(row) for row in await self._database.db.execute_fetchall(
            PLACE_SQL, place_params(scope))])

    def place_read(self, scope: Scope, keep: Callable[[PlaceAlignment], None]) -> Read | None:
        """`place_alignment` as a read for `bot.store.reads`; ``keep`` is given the result.

        None when no query is needed: ``keep`` had it from RAM already.
        """
        known = self._index.known(scope)
        if known is None:
            return Read(PLACE_SQL, place_params(scope),
                        lambda rows: keep(place_from(scope, rows)))
        if not known.own_rows:
            keep(PlaceAlignment(known.bindings, NO_OWN_ROWS))
            return None
        bindings = known.bindings
        return Read(COMMUNITY_SQL, (scope.platform, scope.community),
                    lambda rows: keep(PlaceAlignment(bindings, community_from(rows))))

    async def community_alignment(self, platform: str, community: str) -> CommunityAlignment:
        """A community's locks, layers and profiles, in one query."""
        return community_from(tuple(row) for row in await self._database.db.execute_fetchall(
            COMMUNITY_SQL, (platform, community)
        ))

    # -- bindings -----------------------------------------------------------------

    async def bindings_for(self, scope: Scope) -> dict[Level, Binding]:
        """The bindings at each level that applies to ``scope``."""
        known = self._index.known(scope)
        if known is not None:
            return known.bindings
        rows = await self._database.db.execute_fetchall(BINDINGS_SQL, place_params(scope))
        return bindings_from(scope, (tuple(row) for row in rows))

    async def bind(
        self,
        scope: Scope,
        level: Level,
        actor: Actor,
        *,
        profile: str | None = None,
        layers: tuple[str, ...] | None = None,
    ) -> Binding | None:
        """Bind a profile or a layer stack at ``level``; returns the previous binding.

        With neither ``profile`` nor ``layers`` the binding is removed (reset).

        Raises:
            StoreError: ``level`` is ``thread`` and ``scope`` has no thread.
        """
        place = level_place(scope, level)
        now = self._clock()
        new: Binding | None = None
        if profile is not None or layers is not None:
            new = Binding(level, profile, layers, actor.id, now)
        async with self._write(scope.platform, scope.community) as db:
            # Read under the write lock, so a concurrent change cannot make it stale.
            old = await _binding_at(db, place, level)
            if new is None:
                await db.execute(
                    "DELETE FROM bindings WHERE platform=? AND community=? AND channel=? "
                    "AND thread=?",
                    place,
                )
            else:
                await db.execute(
                    "INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*place, profile, json.dumps(list(layers)) if layers is not None else None,
                     actor.id, now),
                )
            await record_audit(
                db, now, place, actor, f"bind {level}",
                old.describe() if old else None, new.describe() if new else None,
            )
            await record_place_version(db, now, place, actor, "set" if new else "reset")
        return old

    # -- community layers and profiles -----------------------------------------------

    async def save_custom_layer(
        self, platform: str, community: str, name: str, source: str, actor: Actor
    ) -> None:
        """Store a community's own layer (its TOML source)."""
        now = self._clock()
        async with self._write(platform, community) as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_layers VALUES (?, ?, ?, ?, ?, ?)",
                (platform, community, name, source, actor.id, now),
            )
            await record_audit(
                db, now, (platform, community, "", ""), actor, "define layer", None, name
            )
            await record_layer_version(db, now, platform, community, name, source, actor,
                                       "define")

    async def custom_layers(self, platform: str, community: str) -> list[tuple[str, str]]:
        """A community's own layers as (name, TOML source)."""
        rows = await self._database.db.execute_fetchall(
            "SELECT name, source FROM custom_layers WHERE platform=? AND community=? "
            "ORDER BY name",
            (platform, community),
        )
        return [(row[0], row[1]) for row in rows]

    async def save_custom_profile(
        self,
        platform: str,
        community: str,
        name: str,
        layers: tuple[str, ...],
        description: str,
        actor: Actor,
    ) -> None:
        """Store a community's own profile."""
        now = self._clock()
        async with self._write(platform, community) as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, community, name, description, json.dumps(list(layers)), actor.id, now),
            )
            await record_audit(
                db, now, (platform, community, "", ""), actor, "define profile", None,
                f"{name}: {', '.join(layers)}",
            )
            await record_profile_version(db, now, platform, community, name, description,
                                         layers, actor, "define")

    async def custom_profiles(
        self, platform: str, community: str
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """A community's own profiles as (name, description, layers)."""
        rows = await self._database.db.execute_fetchall(
            "SELECT name, description, layers FROM custom_profiles "
            "WHERE platform=? AND community=? ORDER BY name",
            (platform, community),
        )
        return [(row[0], row[1], tuple(json.loads(row[2]))) for row in rows]

    # -- community locks -------------------------------------------------------------

    async def locks(self, platform: str, community: str) -> list[Lock]:
        """The layers locked in a community, oldest first."""
        rows = await self._database.db.execute_fetchall(
            "SELECT layer, locked_by_id, locked_by, locked_at FROM locks "
            "WHERE platform=? AND community=? ORDER BY locked_at, layer",
            (platform, community),
        )
        return [Lock(row[0], row[1], row[2], row[3]) for row in rows]

    async def lock(
        self, platform: str, community: str, layers: tuple[str, ...], actor: Actor
    ) -> tuple[str, ...]:
        """Lock ``layers`` in a community; returns those that were not locked already."""
        return await self._change_locks(platform, community, layers, actor, locking=True)

    async def unlock(
        self, platform: str, community: str, layers: tuple[str, ...], actor: Actor
    ) -> tuple[str, ...]:
        """Unlock ``layers`` in a community; returns those that were locked."""
        return await self._change_locks(platform, community, layers, actor, locking=False)

    async def _change_locks(
        self, platform: str, community: str, layers: tuple[str, ...], actor: Actor,
        *, locking: bool,
    ) -> tuple[str, ...]:
        now = self._clock()
        place: Place = (platform, community, "", "")
        async with self._write(platform, community) as db:
            # Read under the write lock, so the audit names exactly what changed.
            held = {row[0] for row in await db.execute_fetchall(
                "SELECT layer FROM locks WHERE platform=? AND community=?", (platform, community)
            )}
            changed = tuple(name for name in dict.fromkeys(layers)
                            if (name not in held) == locking)
            for name in changed:
                if locking:
                    await db.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?)",
                                     (platform, community, name, actor.id, actor.name, now))
                else:
                    await db.execute(
                        "DELETE FROM locks WHERE platform=? AND community=? AND layer=?",
                        (platform, community, name),
                    )
            if changed:
                await record_audit(
                    db, now, place, actor, "lock" if locking else "unlock",
                    None if locking else ", ".join(changed),
                    ", ".join(changed) if locking else None,
                )
                await record_place_version(db, now, place, actor,
                                           "lock" if locking else "unlock")
        return changed

    # -- audit log -------------------------------------------------------------------

    async def audit_log(self, platform: str, community: str, limit: int = 50) -> list[AuditEntry]:
        """The latest changes in a community, newest first."""
        rows = await self._database.db.execute_fetchall(
            "SELECT at, channel, thread, actor_id, actor_name, action, old, new FROM audit "
            "WHERE platform=? AND community=? ORDER BY id DESC LIMIT ?",
            (platform, community, limit),
        )
        return [
            AuditEntry(
                at=row[0],
                scope=Scope(platform=platform, community=community, channel=row[1],
                            thread=row[2] or None),
                actor_id=row[3], actor_name=row[4], action=row[5], old=row[6], new=row[7],
            )
            for row in rows
        ]
