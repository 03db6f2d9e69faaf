"""Conversation memory (each channel's recent messages) and each channel's reply mode.

Memory commits with ``synchronous=NORMAL`` (no fsync per message): it survives a crash of
the process and may lose the last few messages on a power loss. None of this is alignment
data, so no write here invalidates what readers derive from bindings and profiles.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiosqlite
from cachetools import LRUCache

from bot.messages import Scope
from bot.store.alignment import level_place, record_audit
from bot.store.connection import Database
from bot.store.models import Actor

HISTORY_TRIM_SLACK = 16
"""Rows a channel's memory may exceed its bound by before it is trimmed."""
HISTORY_CACHE_CHANNELS = 1024
"""Channels whose recent memory is kept in RAM."""


@dataclass
class _Memory:
    """The newest messages of one channel: all of the latest ``complete_to`` there are."""

    entries: deque[tuple[str, str]]
    complete_to: int


class ConversationStore:
    """Each channel's conversation memory and reply mode."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time) -> None:
        self._database = database
        self._clock = clock
        self._memory: LRUCache[str, _Memory] = LRUCache(HISTORY_CACHE_CHANNELS)
        # An upper bound on each channel's stored rows; a channel missing here is trimmed
        # on its next append.
        self._stored: LRUCache[str, int] = LRUCache(HISTORY_CACHE_CHANNELS)

    def forget_cached(self, prefix: str) -> None:
        """Drop what is kept in RAM for places whose key starts with ``prefix``."""
        for cache in (self._memory, self._stored):
            for key in [key for key in cache if key.startswith(prefix)]:
                del cache[key]

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
        """
        if not entries:
            return
        key = scope.key()
        now = self._clock()
        names = list(authors) + [None] * (len(entries) - len(authors))
        values = [v for (role, content), author in zip(entries, names, strict=False)
                  for v in (key, role, content, now, author)]
        rows = ", ".join(["(?, ?, ?, ?, ?)"] * len(entries))
        async with self._database.locked(durable=False) as db:
            # One statement is its own atomic transaction: one round trip per exchange.
            await db.execute(
                f"INSERT INTO history (scope, role, content, at, author) VALUES {rows}", values
            )
            memory = self._memory.get(key)
            if memory is not None:
                memory.entries.extend(entries)
                while len(memory.entries) > memory.complete_to:
                    memory.entries.popleft()
            stored = self._stored.get(key)
            stored = None if stored is None else stored + len(entries)
            if stored is None or stored > keep + HISTORY_TRIM_SLACK:
                await db.execute(
                    "DELETE FROM history WHERE scope=? AND id NOT IN "
                    "(SELECT id FROM history WHERE scope=? ORDER BY id DESC LIMIT ?)",
                    (key, key, keep),
                )
                stored = keep  # an upper bound: there may be fewer
            self._stored[key] = stored

    async def history(self, scope: Scope, limit: int) -> list[tuple[str, str]]:
        """A channel's latest ``limit`` messages as (role, content), oldest first.

        Served from memory once loaded (this process is the only writer).
        """
        if limit <= 0:
            return []
        key = scope.key()
        memory = self._memory.get(key)
        if memory is None or memory.complete_to < limit:
            # Under the write lock: no append may slip between the read and the cache.
            async with self._database.locked() as db:
                # One round trip: the rows, and how many the channel has (so the next
                # append knows whether to trim).
                rows = list(await db.execute_fetchall(
                    "SELECT role, content, (SELECT COUNT(*) FROM history WHERE scope=?1) "
                    "FROM (SELECT id, role, content FROM history "
                    "WHERE scope=?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
                    (key, limit),
                ))
                memory = _Memory(deque((str(row[0]), str(row[1])) for row in rows), limit)
                self._memory[key] = memory
                self._stored[key] = int(rows[0][2]) if rows else 0
        return list(memory.entries)[-limit:]

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
        """``always`` or ``addressed`` if set for this channel, else None."""
        return await _reply_mode(self._database.db, scope)

    async def set_reply_mode(self, scope: Scope, mode: str, actor: Actor) -> None:
        """Set whether the bot answers every message here or only when addressed."""
        async with self._database.transaction(durable=True) as db:
            # Read under the write lock, so a concurrent change cannot make it stale.
            old = await _reply_mode(db, scope)
            await db.execute(
                "INSERT OR REPLACE INTO channel_settings VALUES (?, ?)", (scope.key(), mode)
            )
            place = level_place(scope, "channel" if scope.thread is None else "thread")
            await record_audit(
                db, self._clock(), place, actor, "reply mode", old, mode
            )


async def _reply_mode(db: aiosqlite.Connection, scope: Scope) -> str | None:
    async with db.execute(
        "SELECT reply_mode FROM channel_settings WHERE scope=?", (scope.key(),)
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None
