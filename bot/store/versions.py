"""History and rollback: the versions kept of places, community layers and profiles, and
the writes that restore one or change a community layer.

Every write here is one durable transaction through `AlignmentStore.write` (so readers'
caches see it), with its audit row and its new version in the same transaction: the
change, its audit entry and its version land together or not at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from bot.messages import Scope
from bot.store.alignment import AlignmentStore, level_place, record_audit
from bot.store.connection import Database
from bot.store.models import Actor, Binding, Level, Place
from bot.store.version_log import (
    LAYER_COLUMNS,
    PLACE_COLUMNS,
    PROFILE_COLUMNS,
    LayerVersion,
    PlaceVersion,
    ProfileVersion,
    latest_place_version,
    layer_version,
    place_version,
    profile_version,
    record_layer_version,
    record_place_version,
    record_profile_version,
    start_of,
)

HISTORY_ENTRIES = 20
"""Versions a history lists, newest first."""


@dataclass(frozen=True)
class PlacedBinding:
    """A binding and the place it is set at (``channel`` and ``thread`` empty above)."""

    channel: str
    thread: str
    binding: Binding


class VersionStore:
    """The versions of a community's alignment, and the writes that restore them."""

    def __init__(self, database: Database, alignment: AlignmentStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._alignment = alignment
        self._clock = clock

    # -- places --------------------------------------------------------------------

    async def place_history(self, scope: Scope, level: Level, limit: int = HISTORY_ENTRIES
                            ) -> list[PlaceVersion]:
        """The latest versions of ``level`` above ``scope``, newest first."""
        rows = await self._database.db.execute_fetchall(
            f"SELECT {PLACE_COLUMNS} FROM place_versions WHERE platform=? AND community=? "
            "AND channel=? AND thread=? ORDER BY number DESC LIMIT ?",
            (*level_place(scope, level), limit),
        )
        return [place_version(tuple(row)) for row in rows]

    async def place_version(self, scope: Scope, level: Level, number: int
                            ) -> PlaceVersion | None:
        """Version ``number`` of ``level`` above ``scope`` (0: how it started)."""
        place = level_place(scope, level)
        if number == 0:
            return start_of(place)
        rows = list(await self._database.db.execute_fetchall(
            f"SELECT {PLACE_COLUMNS} FROM place_versions WHERE platform=? AND community=? "
            "AND channel=? AND thread=? AND number=?", (*place, number),
        ))
        return place_version(tuple(rows[0])) if rows else None

    async def latest_place(self, scope: Scope, level: Level) -> PlaceVersion:
        """The newest version of ``level`` above ``scope`` (version 0 if it never changed)."""
        return await latest_place_version(self._database.db, level_place(scope, level))

    async def restore_place(self, scope: Scope, level: Level, version: PlaceVersion,
                            actor: Actor) -> PlaceVersion | None:
        """Make ``level`` above ``scope`` hold ``version`` again, as a new version.

        Its binding is set as ``version`` has it; a community's locks too (locks it kept
        keep who set them). Returns the new version, None when nothing had to change.
        """
        place = level_place(scope, level)
        now = self._clock()
        async with self._alignment.write(scope.platform, scope.community) as db:
            current = await latest_place_version(db, place)
            await _write_binding(db, place, version, actor, now)
            if version.locks is not None and place[2] == "":
                await _write_locks(db, place, version.locks, actor, now)
            new = await record_place_version(db, now, place, actor,
                                             f"rollback to v{version.number}")
            if new is not None:
                await record_audit(db, now, place, actor,
                                   f"rollback {level} to v{version.number}",
                                   current.describe(), new.describe())
        return new

    async def community_bindings(self, platform: str, community: str) -> list[PlacedBinding]:
        """Every binding set in a community: the community's, its channels' and threads'."""
        rows = await self._database.db.execute_fetchall(
            "SELECT channel, thread, profile, layers, set_by, set_at FROM bindings "
            "WHERE platform=? AND community=? ORDER BY channel, thread",
            (platform, community),
        )
        placed = []
        for channel, thread, profile, layers, set_by, set_at in rows:
            level: Level = "community" if not channel else "thread" if thread else "channel"
            stack = tuple(json.loads(layers)) if layers is not None else None
            placed.append(PlacedBinding(channel, thread,
                                        Binding(level, profile, stack, set_by, set_at)))
        return placed

    async def allowed_at(self, platform: str, community: str, layer: str
                         ) -> list[tuple[str, str]]:
        """The places (channel, thread) where members may pick ``layer`` for themselves."""
        rows = await self._database.db.execute_fetchall(
            "SELECT channel, thread FROM personal_allowed WHERE platform=? AND community=? "
            "AND layer=? ORDER BY channel, thread", (platform, community, layer),
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    # -- community layers ------------------------------------------------------------

    async def layer_history(self, platform: str, community: str, name: str,
                            limit: int = HISTORY_ENTRIES) -> list[LayerVersion]:
        """The latest versions of a community layer, newest first."""
        rows = await self._database.db.execute_fetchall(
            f"SELECT {LAYER_COLUMNS} FROM layer_versions WHERE platform=? AND community=? "
            "AND name=? ORDER BY number DESC LIMIT ?", (platform, community, name, limit),
        )
        return [layer_version(tuple(row)) for row in rows]

    async def layer_version(self, platform: str, community: str, name: str, number: int
                            ) -> LayerVersion | None:
        """Version ``number`` of a community layer."""
        rows = list(await self._database.db.execute_fetchall(
            f"SELECT {LAYER_COLUMNS} FROM layer_versions WHERE platform=? AND community=? "
            "AND name=? AND number=?", (platform, community, name, number),
        ))
        return layer_version(tuple(rows[0])) if rows else None

    async def save_layer(self, platform: str, community: str, name: str,
                         source: str | None, actor: Actor, action: str) -> int:
        """Store (or, with no ``source``, delete) a community layer; its new version number.

        ``action`` names the change in the audit log and the history: ``create``,
        ``edit``, ``delete`` or ``rollback to v3``.
        """
        now = self._clock()
        place: Place = (platform, community, "", "")
        async with self._alignment.write(platform, community) as db:
            if source is None:
                await db.execute(
                    "DELETE FROM custom_layers WHERE platform=? AND community=? AND name=?",
                    (platform, community, name),
                )
            else:
                await db.execute(
                    "INSERT OR REPLACE INTO custom_layers (platform, community, name, source, "
                    "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (platform, community, name, source, actor.id, now),
                )
            number = await record_layer_version(db, now, platform, community, name, source,
                                                actor, action)
            previous = f"{name} v{number - 1}" if number > 1 else None
            await record_audit(db, now, place, actor, f"{action.split(' ')[0]} layer",
                               previous, f"{name} v{number}" if source is not None else None)
        return number

    # -- community profiles ----------------------------------------------------------

    async def profile_history(self, platform: str, community: str, name: str,
                              limit: int = HISTORY_ENTRIES) -> list[ProfileVersion]:
        """The latest definitions of a community profile, newest first."""
        rows = await self._database.db.execute_fetchall(
            f"SELECT {PROFILE_COLUMNS} FROM profile_versions WHERE platform=? "
            "AND community=? AND name=? ORDER BY number DESC LIMIT ?",
            (platform, community, name, limit),
        )
        return [profile_version(tuple(row)) for row in rows]

    async def profile_version(self, platform: str, community: str, name: str, number: int
                              ) -> ProfileVersion | None:
        """Version ``number`` of a community profile."""
        rows = list(await self._database.db.execute_fetchall(
            f"SELECT {PROFILE_COLUMNS} FROM profile_versions WHERE platform=? "
            "AND community=? AND name=? AND number=?", (platform, community, name, number),
        ))
        return profile_version(tuple(rows[0])) if rows else None

    async def restore_profile(self, platform: str, community: str, name: str,
                              version: ProfileVersion, actor: Actor) -> int:
        """Define a community profile as ``version`` has it, as a new version."""
        now = self._clock()
        place: Place = (platform, community, "", "")
        action = f"rollback to v{version.number}"
        async with self._alignment.write(platform, community) as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_profiles (platform, community, name, "
                "description, layers, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, community, name, version.description,
                 json.dumps(list(version.layers)), actor.id, now),
            )
            number = await record_profile_version(
                db, now, platform, community, name, version.description, version.layers,
                actor, action)
            await record_audit(db, now, place, actor, f"rollback profile to v{version.number}",
                               f"{name} v{number - 1}", f"{name}: {', '.join(version.layers)}")
        return number


async def _write_binding(db: aiosqlite.Connection, place: Place, version: PlaceVersion,
                         actor: Actor, now: float) -> None:
    if not version.binds:
        await db.execute(
            "DELETE FROM bindings WHERE platform=? AND community=? AND channel=? AND thread=?",
            place,
        )
        return
    layers = json.dumps(list(version.layers)) if version.layers is not None else None
    await db.execute(
        "INSERT OR REPLACE INTO bindings (platform, community, channel, thread, profile, "
        "layers, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*place, version.profile, layers, actor.id, now),
    )


async def _write_locks(db: aiosqlite.Connection, place: Place, locks: tuple[str, ...],
                       actor: Actor, now: float) -> None:
    """Lock exactly ``locks`` in the community (locks kept keep who set them)."""
    platform, community = place[:2]
    held = {row[0] for row in await db.execute_fetchall(
        "SELECT layer FROM locks WHERE platform=? AND community=?", (platform, community))}
    for layer in held - set(locks):
        await db.execute("DELETE FROM locks WHERE platform=? AND community=? AND layer=?",
                         (platform, community, layer))
    for offset, layer in enumerate(name for name in locks if name not in held):
        # Later locks sort after earlier ones, as they did when they were set.
        await db.execute(
            "INSERT INTO locks (platform, community, layer, locked_by_id, locked_by, "
            "locked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (platform, community, layer, actor.id, actor.name, now + offset * 1e-6),
        )
