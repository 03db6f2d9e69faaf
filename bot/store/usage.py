"""Tokens generated, per member and community, and the daily budgets communities set.

Each finished reply adds one row (who, where, when, how many tokens); the rolling day is
a sum over the rows of the last 24 hours, so it survives restarts. Usage commits without
an fsync (``synchronous=NORMAL``), like conversation memory; a budget a moderator sets
commits durably with its audit row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cachetools import LRUCache

from bot.store.alignment import record_audit
from bot.store.connection import Database
from bot.store.models import Actor

BudgetKind = Literal["user", "community"]
"""A community's budget for each member (``user``), or for everyone together."""

PRUNE_EVERY = 256
"""Rows written between two deletions of rows older than every window."""
CACHED_COMMUNITIES = 16_384
"""Communities whose budgets are kept in RAM (asked on every message)."""


@dataclass(frozen=True, slots=True)
class Spent:
    """Tokens generated at one moment."""

    at: float
    tokens: int


@dataclass(frozen=True, slots=True)
class CommunityBudgets:
    """The budgets a community's moderators set (None: not set, the operator's applies)."""

    user: int | None = None
    community: int | None = None


class UsageStore:
    """What the model generated for whom, and the budgets communities set."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        self._written = 0
        # This process is the only writer: budgets are read once, then kept until changed.
        self._budgets: LRUCache[tuple[str, str], CommunityBudgets] = LRUCache(
            CACHED_COMMUNITIES)

    def forget_cached(self) -> None:
        """Drop the budgets kept in RAM (after a community moved)."""
        self._budgets.clear()

    def now(self) -> float:
        """The store's clock (wall time: usage outlives the process)."""
        return self._clock()

    async def record(self, platform: str, community: str, user: str, tokens: int,
                     keep: float) -> None:
        """Add ``tokens`` generated for ``user`` in a community; rows older than ``keep``
        seconds are pruned now and then."""
        if tokens <= 0:
            return
        now = self._clock()
        async with self._database.locked(durable=False) as db:
            await db.execute(
                "INSERT INTO token_usage (platform, community, user_id, at, tokens) "
                "VALUES (?, ?, ?, ?, ?)", (platform, community, user, now, tokens),
            )
            self._written += 1
            if self._written % PRUNE_EVERY == 1:
                await db.execute("DELETE FROM token_usage WHERE at < ?", (now - keep,))

    async def spent(
        self, platform: str, since: float, *, community: str | None = None,
        user: str | None = None,
    ) -> list[Spent]:
        """What was generated since ``since``, oldest first: in a community, for a user, or
        for a user in a community."""
        where, values = ["platform=?", "at>=?"], [platform, since]
        if community is not None:
            where.append("community=?")
            values.append(community)
        if user is not None:
            where.append("user_id=?")
            values.append(user)
        rows = await self._database.db.execute_fetchall(
            f"SELECT at, tokens FROM token_usage WHERE {' AND '.join(where)} ORDER BY at",
            values,
        )
        return [Spent(float(row[0]), int(row[1])) for row in rows]

    async def budgets(self, platform: str, community: str) -> CommunityBudgets:
        """The budgets a community set."""
        cached = self._budgets.get((platform, community))
        if cached is not None:
            return cached
        # Under the write lock: no change may slip between the read and the cache.
        async with self._database.locked() as db:
            found = {str(row[0]): int(row[1]) for row in await db.execute_fetchall(
                "SELECT kind, tokens FROM budgets WHERE platform=? AND community=?",
                (platform, community),
            )}
            budgets = CommunityBudgets(user=found.get("user"), community=found.get("community"))
            self._budgets[(platform, community)] = budgets
        return budgets

    async def set_budget(
        self, platform: str, community: str, kind: BudgetKind, tokens: int | None,
        actor: Actor,
    ) -> int | None:
        """Set (or with None, drop) a community's budget; returns the old one."""
        now = self._clock()
        place = (platform, community, "", "")
        self._budgets.pop((platform, community), None)
        async with self._database.transaction(durable=True) as db:
            async with db.execute(
                "SELECT tokens FROM budgets WHERE platform=? AND community=? AND kind=?",
                (platform, community, kind),
            ) as cursor:
                row = await cursor.fetchone()
            old = int(row[0]) if row else None
            if tokens is None:
                await db.execute(
                    "DELETE FROM budgets WHERE platform=? AND community=? AND kind=?",
                    (platform, community, kind),
                )
            else:
                await db.execute("INSERT OR REPLACE INTO budgets VALUES (?, ?, ?, ?, ?, ?)",
                                 (platform, community, kind, tokens, actor.name, now))
            if old != tokens:
                await record_audit(
                    db, now, place, actor, f"{kind} daily tokens",
                    None if old is None else str(old), None if tokens is None else str(tokens),
                )
        return old
