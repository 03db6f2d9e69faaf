"""Each place's remembered turns with their authors, and the summary of older turns.

When a conversation outgrows the context window, its oldest turns are folded into the
place's summary: the summary is replaced and those turns deleted in one transaction, so
a turn is either remembered word for word or in the summary, never lost half-way.
``/forget`` clears both (``ConversationStore.clear_history``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.messages import Scope
from bot.store.connection import Database
from bot.store.conversation import ConversationStore


@dataclass(frozen=True, slots=True)
class Turn:
    """One remembered message: its row, role, text and (for people) who wrote it."""

    id: int
    role: str
    content: str
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """What the summary of a place's older turns says, and how many turns it covers."""

    text: str
    turns: int
    at: float


class SummaryStore:
    """Remembered turns with authors, and summaries of the turns folded away."""

    def __init__(self, database: Database, conversations: ConversationStore,
                 clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._conversations = conversations
        self._clock = clock

    async def recent(self, scope: Scope, limit: int) -> list[Turn]:
        """The latest ``limit`` turns of a place, oldest first, with their authors.

        Served from RAM once read (`ConversationStore.turns`).
        """
        return [Turn(*row) for row in await self._conversations.turns(scope, limit)]

    async def count(self, scope: Scope) -> int:
        """How many turns a place remembers word for word."""
        rows = list(await self._database.db.execute_fetchall(
            "SELECT COUNT(*) FROM history WHERE scope=?", (scope.key(),)
        ))
        return int(rows[0][0]) if rows else 0

    async def summary(self, scope: Scope) -> Summary | None:
        """The summary of a place's older turns, if there is one.

        Served from RAM once read, with the place's turns (`ConversationStore.summary`).
        """
        row = await self._conversations.summary(scope)
        return Summary(*row) if row is not None else None

    async def fold(self, scope: Scope, text: str, turns: Sequence[Turn]) -> bool:
        """Replace the summary with ``text``, which now also covers ``turns``, and delete them.

        Returns False (and changes nothing) when one of the turns is gone already: the
        place was forgotten, or folded by someone else, while the summary was written.
        """
        if not turns:
            return False
        key = scope.key()
        ids = [turn.id for turn in turns]
        at = self._clock()
        # The whole transaction in one round trip to aiosqlite's thread (`_fold`).
        async with self._database.locked(durable=False):
            covered = await self._database.run(lambda db: _fold(db, key, ids, text, at))
            if covered is None:
                return False
            # The conversation store serves memory from RAM: once committed (still under
            # the write lock), the folded turns leave it and the new summary joins it.
            self._conversations.folded(key, ids, (text, covered, at))
        return True


def _fold(db: sqlite3.Connection, key: str, ids: list[int], text: str, at: float
          ) -> int | None:
    """Runs in aiosqlite's thread: the fold as one transaction; the turns the summary now
    covers, or None (nothing changed) when one of ``ids`` is gone."""
    marks = ", ".join("?" * len(ids))
    db.execute("BEGIN IMMEDIATE")
    try:
        (present, old), = db.execute(
            f"SELECT (SELECT COUNT(*) FROM history WHERE scope=?1 AND id IN ({marks})), "
            "(SELECT turns FROM summaries WHERE scope=?1)", (key, *ids)
        ).fetchall()
        if int(present) != len(ids):
            db.execute("ROLLBACK")
            return None
        covered = (int(old) if old is not None else 0) + len(ids)
        db.execute(f"DELETE FROM history WHERE scope=? AND id IN ({marks})", (key, *ids))
        db.execute("INSERT OR REPLACE INTO summaries VALUES (?, ?, ?, ?)",
                   (key, text, covered, at))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return covered
