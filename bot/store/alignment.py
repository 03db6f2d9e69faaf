"""Alignment data: profile bindings per place, community layers and profiles, the audit log.

Every change commits durably (``synchronous=FULL``) together with its audit row, and bumps
`AlignmentStore.generation` so readers can cache what they derive from this data.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiosqlite

from bot.errors import StoreError
from bot.messages import Scope
from bot.store.connection import Database
from bot.store.models import Actor, AuditEntry, Binding, Level, Lock, Place


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
    async with db.execute(
        "SELECT profile, layers, set_by, set_at FROM bindings "
        "WHERE platform=? AND community=? AND channel=? AND thread=?",
        place,
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    layers = tuple(json.loads(row[1])) if row[1] is not None else None
    return Binding(level, row[0], layers, row[2], row[3])


class AlignmentStore:
    """Bindings, community layers and profiles, and the audit log of their changes."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        self.generation = 0
        """Bumped after every write to bindings or community layers and profiles, so
        readers can cache what they derive from them (this process is the only writer)."""

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        try:
            async with self._database.transaction(durable=True) as db:
                yield db
        finally:
            # Any write, even one whose COMMIT was interrupted, invalidates what readers
            # derived from the data before it.
            self.generation += 1

    # -- bindings -----------------------------------------------------------------

    async def bindings_for(self, scope: Scope) -> dict[Level, Binding]:
        """The bindings at each level that applies to ``scope``."""
        levels: list[Level] = ["community", "channel"]
        if scope.thread is not None:
            levels.append("thread")
        found: dict[Level, Binding] = {}
        for level in levels:
            binding = await _binding_at(self._database.db, level_place(scope, level), level)
            if binding is not None:
                found[level] = binding
        return found

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
        async with self._write() as db:
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
        return old

    # -- community layers and profiles -----------------------------------------------

    async def save_custom_layer(
        self, platform: str, community: str, name: str, source: str, actor: Actor
    ) -> None:
        """Store a community's own layer (its TOML source)."""
        now = self._clock()
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_layers VALUES (?, ?, ?, ?, ?, ?)",
                (platform, community, name, source, actor.id, now),
            )
            await record_audit(
                db, now, (platform, community, "", ""), actor, "define layer", None, name
            )

    async def custom_layers(self, platform: str, community: str) -> list[tuple[str, str]]:
        """A community's own layers as (name, TOML source)."""
        async with self._database.db.execute(
            "SELECT name, source FROM custom_layers WHERE platform=? AND community=? "
            "ORDER BY name",
            (platform, community),
        ) as cursor:
            return [(row[0], row[1]) for row in await cursor.fetchall()]

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
        async with self._write() as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, community, name, description, json.dumps(list(layers)), actor.id, now),
            )
            await record_audit(
                db, now, (platform, community, "", ""), actor, "define profile", None,
                f"{name}: {', '.join(layers)}",
            )

    async def custom_profiles(
        self, platform: str, community: str
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """A community's own profiles as (name, description, layers)."""
        async with self._database.db.execute(
            "SELECT name, description, layers FROM custom_profiles "
            "WHERE platform=? AND community=? ORDER BY name",
            (platform, community),
        ) as cursor:
            return [
                (row[0], row[1], tuple(json.loads(row[2]))) for row in await cursor.fetchall()
            ]

    # -- community locks -------------------------------------------------------------

    async def locks(self, platform: str, community: str) -> list[Lock]:
        """The layers locked in a community, oldest first."""
        async with self._database.db.execute(
            "SELECT layer, locked_by_id, locked_by, locked_at FROM locks "
            "WHERE platform=? AND community=? ORDER BY locked_at, layer",
            (platform, community),
        ) as cursor:
            return [Lock(row[0], row[1], row[2], row[3]) for row in await cursor.fetchall()]

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
        async with self._write() as db:
            # Read under the write lock, so the audit names exactly what changed.
            async with db.execute(
                "SELECT layer FROM locks WHERE platform=? AND community=?", (platform, community)
            ) as cursor:
                held = {row[0] for row in await cursor.fetchall()}
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
        return changed

    # -- audit log -------------------------------------------------------------------

    async def audit_log(self, platform: str, community: str, limit: int = 50) -> list[AuditEntry]:
        """The latest changes in a community, newest first."""
        async with self._database.db.execute(
            "SELECT at, channel, thread, actor_id, actor_name, action, old, new FROM audit "
            "WHERE platform=? AND community=? ORDER BY id DESC LIMIT ?",
            (platform, community, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            AuditEntry(
                at=row[0],
                scope=Scope(platform=platform, community=community, channel=row[1],
                            thread=row[2] or None),
                actor_id=row[3], actor_name=row[4], action=row[5], old=row[6], new=row[7],
            )
            for row in rows
        ]
