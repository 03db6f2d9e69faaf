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

The reads caches make of a place not seen yet (`bot.store.reads`) join the same batches:
each runs in its turn, after the writes queued before it, and what it read is kept (still
under the write lock) in that order too, so RAM never holds an older copy than the file.
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
Fetched = Callable[[list[list[tuple[Any, ...]]]], None]
"""Given the rows of each statement of a read, in the batch's turn, under the write lock."""


@dataclass(slots=True)
class _Item:
    statements: Sequence[Statement]
    reads: bool
    """SELECTs, whose rows go to ``then``; else writes, whose row ids do."""
    then: Callable[[list[Any]], None] | None
    done: asyncio.Future[None]


class GroupCommit:
    """Commits queued writes (and makes queued reads) in batches, one round trip each."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._queued: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(self, statements: Sequence[Statement], committed: Committed | None = None
               ) -> asyncio.Future[None]:
        """Queue one write (its statements commit together); done once committed.

        The future fails with a `StoreError` when SQLite refused the write.
        """
        return self._queue(_Item(statements, False, committed, self._future()))

    def read(self, statements: Sequence[Statement], fetched: Fetched) -> asyncio.Future[None]:
        """Queue SELECTs for the next batch; ``fetched`` gets their rows, then it is done."""
        return self._queue(_Item(statements, True, fetched, self._future()))

    @staticmethod
    def _future() -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    def _queue(self, item: _Item) -> asyncio.Future[None]:
        self._queued.append(item)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="cabot-group-commit")
        return item.done

    async def drain(self) -> None:
        """Wait until every write queued so far is committed (or failed)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        batch: list[_Item] = []
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
            for item in (*batch, *self._queued):
                if not item.done.done():
                    item.done.set_exception(failure)
            self._queued = []
            if not isinstance(error, Exception):
                raise
            if not isinstance(error, StoreError):
                log.exception("committing a batch of writes failed")
        finally:
            self._flusher = None

    async def _commit(self, batch: list[_Item]) -> None:
        try:
            results = await self._database.run(
                lambda db: _run(db, [(item.reads, item.statements) for item in batch]))
        except sqlite3.Error as error:
            if len(batch) > 1:
                for item in batch:  # one by one: only a write SQLite refuses fails
                    await self._commit([item])
                return
            batch[0].done.set_exception(self._database.refused(error))
            return
        for item, result in zip(batch, results, strict=True):
            if item.then is not None:
                try:
                    item.then(result)
                except Exception:  # keeping RAM in step must not fail other writers
                    log.exception("after committing a write")
            if not item.done.done():
                item.done.set_result(None)


def _run(db: sqlite3.Connection, items: list[tuple[bool, Sequence[Statement]]]
         ) -> list[list[Any]]:
    """Runs in aiosqlite's thread: every statement in turn, the writes in one transaction
    (a single statement, or reads alone, need none)."""
    count = sum(len(statements) for _, statements in items)
    if count == 1 or all(reads for reads, _ in items):
        return [[_execute(db, reads, sql, values) for sql, values in statements]
                for reads, statements in items]
    db.execute("BEGIN IMMEDIATE")
    try:
        results = [[_execute(db, reads, sql, values) for sql, values in statements]
                   for reads, statements in items]
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results


def _execute(db: sqlite3.Connection, reads: bool, sql: str, values: Sequence[Any]) -> Any:
    cursor = db.execute(sql, values)
    return cursor.fetchall() if reads else cursor.lastrowid
