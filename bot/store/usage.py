"""Tokens generated, per member and community, and the daily budgets communities set.

Each finished reply adds one row (who, where, when, how many tokens); the rolling day is
a sum over the rows of the last 24 hours, so it survives restarts. Usage commits without
an fsync (``synchronous=NORMAL``), like conversation memory; a budget a moderator sets
commits durably with its audit row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lru import LRU

from bot.store.alignment import record_audit
from bot.store.batch import Statement
from bot.store.connection import Database
from bot.store.models import Actor
from bot.store.reads import KeySet, Read, cached_read

BudgetKind = Literal["user", "community"]
"""A community's budget for each member (``user``), or for everyone together."""

PRUNE_EVERY = 256
"""Rows written between two deletions of rows older than every window."""
CACHED_COMMUNITIES = 16_384
"""Communities whose budgets are kept in RAM (asked on every message)."""

# Rows are written in the order of their times, so the rows older than a moment are the ids
# below the first row at or after it: found from the oldest row up, touching only the rows
# it deletes. (``WHERE at < ?`` scans every row the table holds: 86 ms at 715,000 rows,
# under the write lock, every `PRUNE_EVERY` replies.) A row written while the clock stood
# earlier than its predecessor's waits for the next prune past it.
PRUNE_SQL = (
    "DELETE FROM token_usage WHERE id < COALESCE("
    "(SELECT id FROM token_usage WHERE at >= ?1 ORDER BY id LIMIT 1), "
    "(SELECT max(id) FROM token_usage) + 1)"
)


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
        self._budgets: LRU[tuple[str, str], CommunityBudgets] = LRU(
            CACHED_COMMUNITIES)
        self._budgeted: KeySet[tuple[str, str]] = KeySet(
            "SELECT DISTINCT platform, community FROM budgets")
        """The communities that set a budget (most set none: nothing to read)."""

    async def load(self) -> None:
        """Learn which communities set a budget (when the store opens)."""
        async with self._database.locked() as db:
            await self._budgeted.load(db)

    def forget_cached(self, platform: str, *moved: str) -> None:
        """Drop the budgets kept in RAM: the communities ``moved`` moved."""
        self._budgets.clear()
        for community in moved:
            self._budgeted.unsure(platform, community)

    def now(self) -> float:
        """The store's clock (wall time: usage outlives the process)."""
        return self._clock()

    async def record(self, platform: str, community: str, user: str, tokens: int,
                     keep: float) -> None:
        """Add ``tokens`` generated for ``user`` in a community; rows older than ``keep``
        seconds are pruned now and then. Returns once committed (`bot.store.batch`)."""
        await self.queue_record(platform, community, user, tokens, keep)

    def queue_record(self, platform: str, community: str, user: str, tokens: int,
                     keep: float) -> asyncio.Future[None]:
        """`record`, queued now; the result is done once it is committed."""
        if tokens <= 0:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        now = self._clock()
        statements: list[Statement] = [(
            "INSERT INTO token_usage (platform, community, user_id, at, tokens) "
            "VALUES (?, ?, ?, ?, ?)", (platform, community, user, now, tokens),
        )]
        self._written += 1
        if self._written % PRUNE_EVERY == 1:
            statements.append((PRUNE_SQL, (now - keep,)))
        return self._database.writes.submit(statements)

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
        if not self._budgeted.may_have((platform, community)):
            return _UNSET
        cached = self._budgets.get((platform, community))
        if cached is not None:
            return cached
        # Under the write lock: no change may slip between the read and the cache.
        async with self._database.locked() as db:
            budgets = _budgets(await db.execute_fetchall(_BUDGETS_SQL, (platform, community)))
            self._budgets[(platform, community)] = budgets
        return budgets

    def budgets_read(self, platform: str, community: str) -> Read | None:
        """The read `budgets` would make, for `bot.store.reads`; None when RAM holds it."""
        if not self._budgeted.may_have((platform, community)):
            return None
        return cached_read(self._budgets, (platform, community), _BUDGETS_SQL, _budgets)

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
                self._budgeted.add((platform, community))
                await db.execute("INSERT OR REPLACE INTO budgets VALUES (?, ?, ?, ?, ?, ?)",
                                 (platform, community, kind, tokens, actor.name, now))
            if old != tokens:
                await record_audit(
                    db, now, place, actor, f"{kind} daily tokens",
                    None if old is None else str(old), None if tokens is None else str(tokens),
                )
        return old


_BUDGETS_SQL = "SELECT kind, tokens FROM budgets WHERE platform=? AND community=?"


def _budgets(rows: Iterable[Sequence[Any]]) -> CommunityBudgets:
    """A community's budgets from the rows of `_BUDGETS_SQL`."""
    found = {str(row[0]): int(row[1]) for row in rows}
    if not found:
        return _UNSET  # most communities set none: one value for all of them
    return CommunityBudgets(user=found.get("user"), community=found.get("community"))


_UNSET = CommunityBudgets()
