"""Conversation memory (each channel's recent messages) and each channel's reply mode.

Memory commits with ``synchronous=NORMAL`` (no fsync per message): it survives a crash of
the process and may lose the last few messages on a power loss. None of this is alignment
data, so no write here invalidates what readers derive from bindings and profiles.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from lru import LRU

from bot.errors import StoreError
from bot.messages import Scope
from bot.store.alignment import level_place, record_audit
from bot.store.batch import Statement
from bot.store.connection import Database
from bot.store.models import Actor
from bot.store.reads import Read, Rows

HISTORY_TRIM_SLACK = 16
"""Rows a channel's memory may exceed its bound by before it is trimmed."""
HISTORY_CACHE_CHANNELS = 1024
"""Channels whose recent memory (and summary) is kept in RAM."""
REPLY_MODES_KEPT = 65_536
"""Places whose reply mode (or that they have none) is kept in RAM."""
IDS_RESERVED = 4096
"""Turn ids taken at a time: ``history_ids`` is moved past them before any is used."""

Row = tuple[int, str, str, str | None]
"""One remembered message: its row id, role, text and (for people) who wrote it."""
SummaryRow = tuple[str, int, float]
"""A place's summary of older turns: its text, how many turns it covers, when written."""

# A place's memory in one query and one row: its newest turns (one more than the ?2 wanted,
# to know whether that is all it has), newest first, as a JSON array of [id, role,
# content, author], and its summary (or NULL): one row to hand over from SQLite, however
# many turns it holds.
_MEMORY_SQL = (
    "SELECT (SELECT json_group_array(json_array(id, role, content, author)) FROM "
    "(SELECT id, role, content, author FROM history WHERE scope=?1 ORDER BY id DESC "
    "LIMIT ?2 + 1)), "
    "(SELECT json_array(text, turns, at) FROM summaries WHERE scope=?1)"
)


@dataclass(slots=True)
class _Memory:
    """What RAM holds of one place's memory: all of its latest ``complete_to`` turns,
    oldest first, and its summary."""

    turns: deque[Row]
    complete_to: int
    summary: SummaryRow | None


class ConversationStore:
    """Each channel's conversation memory and reply mode.

    A place's memory (its latest turns and the summary of older ones) is read in one query
    the first time it is asked for and then served from RAM: this process is the only
    writer, and every write here, in `bot.store.summaries` and in a community move keeps
    that copy current or drops it.

    Args:
        cached_places: places whose memory RAM holds at most (default
            `HISTORY_CACHE_CHANNELS`).
    """

    def __init__(self, database: Database, clock: Callable[[], float] = time.time, *,
                 cached_places: int = HISTORY_CACHE_CHANNELS) -> None:
        self._database = database
        self._clock = clock
        self._memory: LRU[str, _Memory] = LRU(cached_places)
        # An upper bound on each channel's stored rows; a channel missing here is trimmed
        # on its next append.
        self._stored: LRU[str, int] = LRU(cached_places)
        self._modes: LRU[str, str | None] = LRU(REPLY_MODES_KEPT)
        self._turns_wanted = 0
        """The most turns asked for so far: what a summary's first read loads with it."""
        self._next_id: int | None = None
        """The id the next remembered turn gets (`load`); ids only grow, in every place."""
        self._reserved = 0
        """Ids below this are reserved: ``history_ids`` is committed past them."""

    async def load(self) -> None:
        """Reserve the next turn ids (when the store opens).

        ``history_ids`` always lies past every id in use: ids are taken `IDS_RESERVED` at
        a time, and a block is committed there before its first id is (with it, in the
        same transaction, when it runs out). After a crash the next start takes a new
        block, leaving a gap, never an id twice.
        """
        async with self._database.transaction(durable=True) as db:
            rows = list(await db.execute_fetchall("SELECT next FROM history_ids"))
            first = int(rows[0][0]) if rows else 1
            await db.execute("UPDATE history_ids SET next = ?", (first + IDS_RESERVED,))
        self._next_id, self._reserved = first, first + IDS_RESERVED

    def forget_cached(self, prefix: str) -> None:
        """Drop what is kept in RAM for places whose key starts with ``prefix``."""
        for cache in (self._memory, self._stored, self._modes):
            for key in [key for key in cache.keys() if key.startswith(prefix)]:
                del cache[key]

    def folded(self, key: str, ids: Sequence[int], summary: SummaryRow) -> None:
        """Keep RAM in step with a fold just committed (`bot.store.summaries`): the turns
        ``ids`` are gone and ``summary`` covers them."""
        memory = self._memory.get(key)
        if memory is not None:
            gone = set(ids)
            memory.turns = deque(turn for turn in memory.turns if turn[0] not in gone)
            memory.summary = summary
        stored = self._stored.get(key)
        if stored is not None:
            self._stored[key] = max(0, stored - len(ids))

    # -- conversation memory ---------------------------------------------------------

    async def append_history(self, scope: Scope, role: str, content: str, keep: int) -> None:
        """Add a message to a channel's memory, keeping only the latest ``keep``."""
        await self.append_exchange(scope, [(role, content)], keep)

    async def append_exchange(
        self, scope: Scope, entries: Sequence[tuple[str, str]], keep: int,
        authors: Sequence[str | None] = (),
    ) -> None:
        """Add ``(role, content)`` messages to a channel's memory, atomically.

        ``authors`` names who wrote each message (None for the bot's own), where known.
        The table keeps at most ``keep + HISTORY_TRIM_SLACK`` rows per channel: trimming
        runs every few messages, not on every one, and readers take the newest ``keep``.
        Returns once the messages are committed (with other writes: `bot.store.batch`).
        """
        await self.queue_exchange(scope, entries, keep, authors)

    def queue_exchange(
        self, scope: Scope, entries: Sequence[tuple[str, str]], keep: int,
        authors: Sequence[str | None] = (),
    ) -> asyncio.Future[None]:
        """`append_exchange`, queued now; the result is done once it is committed."""
        if not entries:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if self._next_id is None:
            raise StoreError("The store is not open.")
        key = scope.key()
        now = self._clock()
        first = self._next_id
        self._next_id += len(entries)
        names = list(authors) + [None] * (len(entries) - len(authors))
        values = [v for index, ((role, content), author) in enumerate(
                      zip(entries, names, strict=False))
                  for v in (key, first + index, role, content, now, author)]
        rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(entries))
        statements: list[Statement] = [
            (f"INSERT INTO history (scope, id, role, content, at, author) VALUES {rows}",
             values)]
        reserving = 0
        if self._next_id > self._reserved:  # the block ran out: the next one, with these
            reserving = self._next_id + IDS_RESERVED
            statements.append(
                ("UPDATE history_ids SET next = max(next, ?)", (reserving,)))
        stored = self._stored.get(key)
        stored = None if stored is None else stored + len(entries)
        if stored is None or stored > keep + HISTORY_TRIM_SLACK:
            statements.append((
                "DELETE FROM history WHERE scope=? AND id NOT IN "
                "(SELECT id FROM history WHERE scope=? ORDER BY id DESC LIMIT ?)",
                (key, key, keep),
            ))
            stored = keep  # an upper bound: there may be fewer
        self._stored[key] = stored  # counted now: writes queued after this one see it

        def committed(_ids: list[int | None]) -> None:
            self._reserved = max(self._reserved, reserving)
            memory = self._memory.get(key)
            if memory is None:
                return
            memory.turns.extend(
                (first + index, role, content, author)
                for index, ((role, content), author) in enumerate(
                    zip(entries, names, strict=False))
            )
            while len(memory.turns) > memory.complete_to:
                memory.turns.popleft()

        return self._database.writes.submit(statements, committed)

    async def history(self, scope: Scope, limit: int) -> list[tuple[str, str]]:
        """A channel's latest ``limit`` messages as (role, content), oldest first.

        Served from memory once loaded (this process is the only writer).
        """
        return [(role, content) for _, role, content, _ in await self.turns(scope, limit)]

    async def turns(self, scope: Scope, limit: int) -> list[Row]:
        """A place's latest ``limit`` turns as (id, role, content, author), oldest first."""
        if limit <= 0:
            return []
        self._turns_wanted = max(self._turns_wanted, limit)
        memory = await self._loaded(scope.key(), limit)
        return list(memory.turns)[-limit:]

    async def summary(self, scope: Scope) -> SummaryRow | None:
        """A place's summary of older turns as (text, turns, at), if it has one.

        Read together with its latest turns (as many as were last asked for), since a
        reply wants both.
        """
        return (await self._loaded(scope.key(), 0)).summary

    async def _loaded(self, key: str, limit: int) -> _Memory:
        """The place's memory with at least its latest ``limit`` turns, read if need be."""
        memory = self._memory.get(key)
        if memory is not None and memory.complete_to >= limit:
            return memory
        limit = max(limit, self._turns_wanted)
        # Under the write lock: no append or fold may slip between the read and the cache.
        async with self._database.locked() as db:
            rows = await db.execute_fetchall(_MEMORY_SQL, (key, limit))
            return self._keep(key, limit, rows)

    def memory_read(self, scope: Scope, limit: int) -> Read | None:
        """The read `turns` would make for ``scope``'s latest ``limit`` turns (and its
        summary), for `bot.store.reads`; None when RAM holds them."""
        self._turns_wanted = max(self._turns_wanted, limit)
        key = scope.key()
        memory = self._memory.get(key)
        if memory is not None and memory.complete_to >= limit:
            return None
        limit = self._turns_wanted

        def keep(rows: Rows) -> None:
            memory = self._memory.get(key)
            if memory is None or memory.complete_to < limit:
                self._keep(key, limit, rows)

        return Read(_MEMORY_SQL, (key, limit), keep)

    def _keep(self, key: str, limit: int, rows: Iterable[Sequence[Any]]) -> _Memory:
        """Keep a place's memory from the row of `_MEMORY_SQL` (under the write lock)."""
        ((turns, summary),) = rows
        newest_first: list[list[Any]] = json.loads(turns)
        if len(newest_first) <= limit:
            self._stored[key] = len(newest_first)  # all it has
        else:
            self._stored.pop(key, None)  # more than that: trimmed on its next append
            del newest_first[limit:]
        memory = _Memory(
            deque(map(tuple, reversed(newest_first))),  # each [id, role, content, author]
            limit,
            None if summary is None else _summary(json.loads(summary)),
        )
        self._memory[key] = memory
        return memory

    async def clear_history(self, scope: Scope) -> int:
        """Forget a channel's memory; returns how many messages were removed."""
        key = scope.key()
        async with self._database.transaction(durable=True) as db:
            self._memory.pop(key, None)
            self._stored[key] = 0
            cursor = await db.execute("DELETE FROM history WHERE scope=?", (key,))
            removed = cursor.rowcount
            await db.execute("DELETE FROM summaries WHERE scope=?", (key,))  # bot.store.summaries
            return removed

    # -- reply mode -------------------------------------------------------------------

    async def reply_mode(self, scope: Scope) -> str | None:
        """``always`` or ``addressed`` if set for this channel, else None.

        Kept in RAM once read: it is asked of every message not addressed to the bot.
        """
        key = scope.key()
        if key in self._modes:
            return self._modes[key]
        # Under the write lock: no change may slip between the read and the cache.
        async with self._database.locked() as db:
            mode = await _reply_mode(db, scope)
            self._modes[key] = mode
        return mode

    async def set_reply_mode(self, scope: Scope, mode: str, actor: Actor) -> None:
        """Set whether the bot answers every message here or only when addressed."""
        async with self._database.transaction(durable=True) as db:
            # Read under the write lock, so a concurrent change cannot make it stale.
            old = await _reply_mode(db, scope)
            await db.execute(
                "INSERT OR REPLACE INTO channel_settings VALUES (?, ?)", (scope.key(), mode)
            )
            self._modes.pop(scope.key(), None)  # read afresh, once committed
            place = level_place(scope, "channel" if scope.thread is None else "thread")
            await record_audit(
                db, self._clock(), place, actor, "reply mode", old, mode
            )


def _summary(values: list[Any]) -> SummaryRow:
    text, turns, at = values
    return str(text), int(turns), float(at)


async def _reply_mode(db: aiosqlite.Connection, scope: Scope) -> str | None:
    rows = list(await db.execute_fetchall(
        "SELECT reply_mode FROM channel_settings WHERE scope=?", (scope.key(),)
    ))
    return str(rows[0][0]) if rows else None
