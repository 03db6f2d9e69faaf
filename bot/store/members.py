"""Personal layers: which opt-in layers moderators allow where, and which a member picked.

Moderators allow layers for their community, a channel or a thread; what is allowed in a
place is what its levels allow together. A member's pick is kept per community and
applies wherever its layers are allowed. Every change commits durably with its audit row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from lru import LRU

from bot.messages import Scope
from bot.store.alignment import level_place, record_audit
from bot.store.connection import Database
from bot.store.models import Actor, Level
from bot.store.reads import KeySet, Read, cached_read

LEVELS: tuple[Level, ...] = ("community", "channel", "thread")
CACHED_MEMBERS = 65_536
"""Members whose pick is kept in RAM (asked on every message they send)."""


@dataclass(frozen=True, slots=True)
class Allowance:
    """A layer members may pick, at one level of a place, and who allowed it."""

    layer: str
    level: Level
    by: str


class MemberStore:
    """What moderators allow members to pick, and what each member picked."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        # This process is the only writer: a pick is read once, then kept until changed.
        self._chosen: LRU[tuple[str, str, str], tuple[str, ...]] = LRU(
            CACHED_MEMBERS)
        self._picked: KeySet[tuple[str, str, str]] = KeySet(
            "SELECT platform, community, user_id FROM personal_layers")
        """The members who picked personal layers (most pick none: nothing to read)."""

    async def load(self) -> None:
        """Learn which members picked personal layers (when the store opens)."""
        async with self._database.locked() as db:
            await self._picked.load(db)

    def forget_cached(self, platform: str, *moved: str) -> None:
        """Drop the picks kept in RAM: the communities ``moved`` moved."""
        self._chosen.clear()
        for community in moved:
            self._picked.unsure(platform, community)

    # -- what moderators allow ---------------------------------------------------------

    async def allowed(self, scope: Scope) -> tuple[Allowance, ...]:
        """The layers members may pick in ``scope``: its community's, channel's and thread's."""
        return await _allowed(self._database.db, scope)

    async def allow(
        self, scope: Scope, level: Level, layers: tuple[str, ...], actor: Actor
    ) -> tuple[str, ...]:
        """Allow ``layers`` at ``level`` of ``scope``; returns those not allowed there yet."""
        return await self._change(scope, level, layers, actor, allowing=True)

    async def disallow(
        self, scope: Scope, level: Level, layers: tuple[str, ...], actor: Actor
    ) -> tuple[str, ...]:
        """No longer allow ``layers`` at ``level`` of ``scope``; returns those that were."""
        return await self._change(scope, level, layers, actor, allowing=False)

    async def _change(
        self, scope: Scope, level: Level, layers: tuple[str, ...], actor: Actor,
        *, allowing: bool,
    ) -> tuple[str, ...]:
        place = level_place(scope, level)
        now = self._clock()
        async with self._database.transaction(durable=True) as db:
            # Read under the write lock, so the audit names exactly what changed.
            async with db.execute(
                "SELECT layer FROM personal_allowed WHERE platform=? AND community=? "
                "AND channel=? AND thread=?", place,
            ) as cursor:
                held = {str(row[0]) for row in await cursor.fetchall()}
            changed = tuple(name for name in dict.fromkeys(layers)
                            if (name not in held) == allowing)
            for name in changed:
                if allowing:
                    await db.execute("INSERT INTO personal_allowed VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (*place, name, actor.name, now))
                else:
                    await db.execute(
                        "DELETE FROM personal_allowed WHERE platform=? AND community=? "
                        "AND channel=? AND thread=? AND layer=?", (*place, name),
                    )
            if changed:
                names = ", ".join(changed)
                await record_audit(
                    db, now, place, actor,
                    f"{'allow' if allowing else 'disallow'} personal layers {level}",
                    None if allowing else names, names if allowing else None,
                )
        return changed

    # -- what members pick -------------------------------------------------------------

    async def chosen(self, platform: str, community: str, user: str) -> tuple[str, ...]:
        """The layers ``user`` picked for themself in a community (empty: none)."""
        key = (platform, community, user)
        if not self._picked.may_have(key):
            return ()
        cached = self._chosen.get(key)
        if cached is not None:
            return cached
        # Under the write lock: no change may slip between the read and the cache.
        async with self._database.locked() as db:
            chosen = await _chosen(db, platform, community, user)
            self._chosen[key] = chosen
        return chosen

    def chosen_read(self, platform: str, community: str, user: str) -> Read | None:
        """The read `chosen` would make, for `bot.store.reads`; None when RAM holds it."""
        if not self._picked.may_have((platform, community, user)):
            return None
        return cached_read(self._chosen, (platform, community, user), _CHOSEN_SQL, _picked)

    async def choose(
        self, platform: str, community: str, actor: Actor, layers: tuple[str, ...]
    ) -> tuple[str, ...]:
        """Set the layers ``actor`` picked for themself (empty: none); returns the old pick."""
        now = self._clock()
        place = (platform, community, "", "")
        key = (platform, community, actor.id)
        self._chosen.pop(key, None)
        async with self._database.transaction(durable=True) as db:
            old = await _chosen(db, platform, community, actor.id)
            if layers:
                self._picked.add(key)
                await db.execute(
                    "INSERT OR REPLACE INTO personal_layers VALUES (?, ?, ?, ?, ?)",
                    (platform, community, actor.id, json.dumps(list(layers)), now),
                )
            else:
                await db.execute(
                    "DELETE FROM personal_layers WHERE platform=? AND community=? AND user_id=?",
                    (platform, community, actor.id),
                )
            if old != layers:
                await record_audit(db, now, place, actor, "personal layers",
                                   ", ".join(old) or None, ", ".join(layers) or None)
        self._chosen[key] = layers
        return old


async def _allowed(db: aiosqlite.Connection, scope: Scope) -> tuple[Allowance, ...]:
    found: dict[str, Allowance] = {}
    for level in LEVELS:
        if level == "thread" and scope.thread is None:
            continue
        for row in await db.execute_fetchall(
            "SELECT layer, allowed_by FROM personal_allowed WHERE platform=? AND community=? "
            "AND channel=? AND thread=? ORDER BY allowed_at, rowid", level_place(scope, level),
        ):
            found.setdefault(str(row[0]), Allowance(str(row[0]), level, str(row[1])))
    return tuple(found.values())


_CHOSEN_SQL = "SELECT layers FROM personal_layers WHERE platform=? AND community=? AND user_id=?"


async def _chosen(db: aiosqlite.Connection, platform: str, community: str, user: str
                  ) -> tuple[str, ...]:
    return _picked(await db.execute_fetchall(_CHOSEN_SQL, (platform, community, user)))


def _picked(rows: Iterable[Sequence[Any]]) -> tuple[str, ...]:
    """A member's pick from the rows of `_CHOSEN_SQL`."""
    for row in rows:
        return tuple(json.loads(row[0]))
    return ()
