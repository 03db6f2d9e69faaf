"""Group commit: the writes every reply makes, committed together in one round trip.

After each reply the bot remembers the exchange and counts the tokens it generated. Each
writer queues its statements and waits; one flush takes everything queued so far, runs it
as one transaction in aiosqlite's thread (``BEGIN IMMEDIATE``, the statements,
``COMMIT``: one round trip) under the write lock, tells each writer what its statements
inserted, and wakes it. A writer returns only once its rows are committed, so a write
is exactly as durable as a statement of its own (``synchronous=NORMAL``: it survives a
crash of the process). Under load a batch holds every write queued while the last one
was committing; alone, a write is a batch of its own. When a batch fails, its writes are
tried again one by one, so a write that SQLite refuses fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.errors import StoreError

if TYPE_CHECKING:
    from bot.store.connection import Database

log = logging.getLogger(__name__)

Statement = tuple[str, Sequence[Any]]
"""One SQL statement and its parameters."""
Committed = Callable[[list[int | None]], None]
"""Told the row id each statement of a write inserted last, once it is committed (still
under the write lock, so what it keeps in RAM is in step with the file)."""


@dataclass(slots=True)
class _Write:
    statements: Sequence[Statement]
    committed: Committed | None
    done: asyncio.Future[None]


class GroupCommit:
    """Commits queued writes in batches, one transaction and one round trip per batch."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._queued: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, statements: Sequence[Statement], committed: Committed | None = None
               ) -> asyncio.Future[None]:
        """Queue one write (its statements commit together); done once committed.

        The future fails with a `StoreError` when SQLite refused the write.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append(_Write(statements, committed, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="cabot-group-commit")
        return done

    async def drain(self) -> None:
        """Wait until every write queued so far is committed (or failed)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        batch: list[_Write] = []
        try:
            while self._queued:
                async with self._database.locked(durable=False):
                    # Taken under the lock: what queued while it was busy joins this batch.
                    batch, self._queued = self._queued, []
                    await self._commit(batch)
                    batch = []
        except BaseException as error:
            failure = error if isinstance(error, StoreError) else StoreError(
                f"A write to the database was not made ({type(error).__name__}).")
            for write in (*batch, *self._queued):
                if not write.done.done():
                    write.done.set_exception(failure)
            self._queued = []
            if not isinstance(error, Exception):
                raise
            if not isinstance(error, StoreError):
                log.exception("committing a batch of writes failed")
        finally:
            self._flusher = None

    async def _commit(self, batch: list[_Write]) -> None:
        try:
            ids = await self._database.run(
                lambda db: _run(db, [write.statements for write in batch]))
        except sqlite3.Error as error:
            if len(batch) > 1:
                for write in batch:  # one by one: only a write SQLite refuses fails
                    await self._commit([write])
                return
            batch[0].done.set_exception(self._database.refused(error))
            return
        for write, inserted in zip(batch, ids, strict=True):
            if write.committed is not None:
                try:
                    write.committed(inserted)
                except Exception:  # keeping RAM in step must not fail other writers
                    log.exception("after committing a write")
            if not write.done.done():
                write.done.set_result(None)


def _run(db: sqlite3.Connection, writes: list[Sequence[Statement]]) -> list[list[int | None]]:
    """Runs in aiosqlite's thread: every statement, in one transaction (a single statement
    is a transaction of its own)."""
    if len(writes) == 1 and len(writes[0]) == 1:
        (sql, values), = writes[0]
        return [[db.execute(sql, values).lastrowid]]
    db.execute("BEGIN IMMEDIATE")
    try:
        ids = [[db.execute(sql, values).lastrowid for sql, values in statements]
               for statements in writes]
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return ids
