"""A community's own settings: named values its moderators choose (e.g. ``probes``).

Each change commits durably with its audit row. Unknown names are the caller's concern;
the store keeps text values.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.store.alignment import record_audit
from bot.store.connection import Database
from bot.store.models import Actor


class CommunitySettings:
    """Read and change the settings of communities."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock

    async def get(self, platform: str, community: str, name: str) -> str | None:
        """The value of ``name`` in a community, or None when never set."""
        rows = list(await self._database.db.execute_fetchall(
            "SELECT value FROM community_settings WHERE platform=? AND community=? AND name=?",
            (platform, community, name),
        ))
        return str(rows[0][0]) if rows else None

    async def set(self, platform: str, community: str, name: str, value: str,
                  actor: Actor) -> str | None:
        """Set ``name`` to ``value`` in a community (audited); returns the old value."""
        now = self._clock()
        async with self._database.transaction(durable=True) as db:
            rows = list(await db.execute_fetchall(
                "SELECT value FROM community_settings WHERE platform=? AND community=? "
                "AND name=?", (platform, community, name)))
            old = str(rows[0][0]) if rows else None
            await db.execute(
                "INSERT OR REPLACE INTO community_settings VALUES (?, ?, ?, ?, ?, ?)",
                (platform, community, name, value, actor.id, now),
            )
            await record_audit(db, now, (platform, community, "", ""), actor,
                               f"setting {name}", old, value)
        return old
