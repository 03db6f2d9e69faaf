"""The SQLite store: profile bindings, community layers and profiles, memory, audit log.

One connection, one writer: every write transaction runs under a lock and starts with
``BEGIN IMMEDIATE``, so concurrent coroutines never interleave half-done writes. The
journal is WAL. Alignment changes (bindings, community layers and profiles, the audit log)
commit with ``synchronous=FULL`` and survive a power loss; conversation memory commits with
``synchronous=NORMAL`` (no fsync per message), which survives a crash of the process and
may lose the last few messages of memory on a power loss, never corrupting the file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosqlite

from bot.errors import SchemaTooNewError, StoreError
from bot.messages import Scope

log = logging.getLogger(__name__)

Level = Literal["thread", "channel", "community"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE bindings (
        platform TEXT NOT NULL, community TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '', thread TEXT NOT NULL DEFAULT '',
        profile TEXT, layers TEXT,
        set_by TEXT NOT NULL, set_at REAL NOT NULL,
        PRIMARY KEY (platform, community, channel, thread)
    );
    CREATE TABLE custom_layers (
        platform TEXT NOT NULL, community TEXT NOT NULL, name TEXT NOT NULL,
        source TEXT NOT NULL, created_by TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (platform, community, name)
    );
    CREATE TABLE custom_profiles (
        platform TEXT NOT NULL, community TEXT NOT NULL, name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '', layers TEXT NOT NULL,
        created_by TEXT NOT NULL, created_at REAL NOT NULL,
        PRIMARY KEY (platform, community, name)
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scope TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, at REAL NOT NULL
    );
    CREATE INDEX history_scope ON history (scope, id);
    CREATE TABLE channel_settings (
        scope TEXT PRIMARY KEY, reply_mode TEXT NOT NULL
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL,
        platform TEXT NOT NULL, community TEXT NOT NULL,
        channel TEXT NOT NULL, thread TEXT NOT NULL,
        actor_id TEXT NOT NULL, actor_name TEXT NOT NULL,
        action TEXT NOT NULL, old TEXT, new TEXT
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


HISTORY_TRIM_SLACK = 16
"""Rows a channel's memory may exceed its bound by before it is trimmed."""
HISTORY_CACHE_CHANNELS = 1024
"""Channels whose recent memory is kept in RAM."""


@dataclass
class _Memory:
    """The newest messages of one channel: all of the latest ``complete_to`` there are."""

    entries: deque[tuple[str, str]]
    complete_to: int


@dataclass(frozen=True)
class Binding:
    """A profile (or an explicit layer stack) bound to one scope level."""

    level: Level
    profile: str | None
    layers: tuple[str, ...] | None
    set_by: str
    set_at: float

    def describe(self) -> str:
        """``profile 'kids'`` or ``layers base, concise``."""
        if self.profile is not None:
            return f"profile {self.profile!r}"
        return "layers " + ", ".join(self.layers or ())


@dataclass(frozen=True)
class AuditEntry:
    """One recorded profile change."""

    at: float
    scope: Scope
    actor_id: str
    actor_name: str
    action: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the audit log."""

    id: str
    name: str


def _level_key(scope: Scope, level: Level) -> tuple[str, str, str, str]:
    if level == "community":
        return scope.platform, scope.community, "", ""
    if level == "channel":
        return scope.platform, scope.community, scope.channel, ""
    if scope.thread is None:
        raise StoreError("This place has no thread; bind the channel instead.")
    return scope.platform, scope.community, scope.channel, scope.thread


class Store:
    """Async access to cabot's SQLite database."""

    def __init__(self, path: Path | str, clock: Callable[[], float] = time.time) -> None:
        self._path = str(path)
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._write_lock: asyncio.Lock | None = None
        self._durable = True
        self._memory: OrderedDict[str, _Memory] = OrderedDict()
        self._stored: dict[str, int | None] = {}
        self.alignment_generation = 0
        """Bumped after every committed change to bindings or community layers and profiles,
        so readers can cache what they derive from them (this process is the only writer)."""

    async def open(self) -> None:
        """Open the database, creating or migrating its schema.

        Raises:
            SchemaTooNewError: the file was written by a newer cabot.
            StoreError: the file cannot be opened.
        """
        self._write_lock = asyncio.Lock()
        try:
            self._db = await aiosqlite.connect(self._path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=FULL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
        except sqlite3.DatabaseError as error:
            await self.close()
            raise StoreError(
                f"Cannot open the database {self._path} ({error}); check CABOT_DB points "
                "to a cabot SQLite file in a writable directory."
            ) from None
        except StoreError:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the database (committed data is already on disk)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("The store is not open.")
        return self._db

    async def schema_version(self) -> int:
        """The schema version recorded in the file."""
        async with self.db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self) -> None:
        version = await self.schema_version()
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"The database {self._path} has schema version {version}, newer than this "
                f"cabot understands ({SCHEMA_VERSION}). Upgrade cabot, or point CABOT_DB "
                "at another file."
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            log.info("migrating %s to schema version %d", self._path, number)
            async with self._write_lock_held():
                await self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]}\n"
                    f"PRAGMA user_version = {number};\nCOMMIT;"
                )

    @asynccontextmanager
    async def _write_lock_held(self) -> AsyncIterator[None]:
        assert self._write_lock is not None
        async with self._write_lock:
            yield

    @asynccontextmanager
    async def _transaction(self, durable: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock_held():
            db = self.db
            try:
                await self._set_durable(durable)
                # Inside the try: aiosqlite runs a statement even when its awaiter is
                # cancelled, so a cancelled BEGIN must still be rolled back.
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                await self._rollback(db)
                raise
            finally:
                if durable:
                    # Readers cache what they derive from alignment data; any durable
                    # transaction (even one whose COMMIT was interrupted) invalidates it.
                    self.alignment_generation += 1

    async def _set_durable(self, durable: bool) -> None:
        if durable != self._durable:
            await self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._durable = durable

    @staticmethod
    async def _rollback(db: aiosqlite.Connection) -> None:
        try:
            await asyncio.shield(db.execute("ROLLBACK"))
        except sqlite3.OperationalError:
            pass  # SQLite already rolled back (or the BEGIN never ran)

    # -- bindings -----------------------------------------------------------------

    async def bindings_for(self, scope: Scope) -> dict[Level, Binding]:
        """The bindings at each level that applies to ``scope``."""
        levels: list[Level] = ["community", "channel"]
        if scope.thread is not None:
            levels.append("thread")
        found: dict[Level, Binding] = {}
        for level in levels:
            key = _level_key(scope, level)
            async with self.db.execute(
                "SELECT profile, layers, set_by, set_at FROM bindings "
                "WHERE platform=? AND community=? AND channel=? AND thread=?",
                key,
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                layers = tuple(json.loads(row[1])) if row[1] is not None else None
                found[level] = Binding(level, row[0], layers, row[2], row[3])
        return found

    async def bind(
        self,
        scope: Scope,
        level: Level,
        actor: Actor,
        *,
        profile: str | None = None,
        layers: tuple[str, ...] | None = None,
    ) -> Binding | None:
        """Bind a profile or a layer stack at ``level``; returns the previous binding.

        With neither ``profile`` nor ``layers`` the binding is removed (reset).
        """
        key = _level_key(scope, level)
        now = self._clock()
        old = (await self.bindings_for(scope)).get(level)
        new: Binding | None = None
        if profile is not None or layers is not None:
            new = Binding(level, profile, layers, actor.id, now)
        async with self._transaction() as db:
            if new is None:
                await db.execute(
                    "DELETE FROM bindings WHERE platform=? AND community=? AND channel=? "
                    "AND thread=?",
                    key,
                )
            else:
                await db.execute(
                    "INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (*key, profile, json.dumps(list(layers)) if layers is not None else None,
                     actor.id, now),
                )
            await db.execute(
                "INSERT INTO audit (at, platform, community, channel, thread, actor_id, "
                "actor_name, action, old, new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, *key, actor.id, actor.name, f"bind {level}",
                 old.describe() if old else None, new.describe() if new else None),
            )
        return old

    async def audit_log(self, platform: str, community: str, limit: int = 50) -> list[AuditEntry]:
        """The latest profile changes in a community, newest first."""
        async with self.db.execute(
            "SELECT at, channel, thread, actor_id, actor_name, action, old, new FROM audit "
            "WHERE platform=? AND community=? ORDER BY id DESC LIMIT ?",
            (platform, community, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            AuditEntry(
                at=row[0],
                scope=Scope(platform=platform, community=community, channel=row[1],
                            thread=row[2] or None),
                actor_id=row[3], actor_name=row[4], action=row[5], old=row[6], new=row[7],
            )
            for row in rows
        ]

    # -- community layers and profiles -----------------------------------------------

    async def save_custom_layer(
        self, platform: str, community: str, name: str, source: str, actor: Actor
    ) -> None:
        """Store a community's own layer (its TOML source)."""
        now = self._clock()
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_layers VALUES (?, ?, ?, ?, ?, ?)",
                (platform, community, name, source, actor.id, now),
            )
            await db.execute(
                "INSERT INTO audit (at, platform, community, channel, thread, actor_id, "
                "actor_name, action, old, new) VALUES (?, ?, ?, '', '', ?, ?, ?, NULL, ?)",
                (now, platform, community, actor.id, actor.name, "define layer", name),
            )

    async def custom_layers(self, platform: str, community: str) -> list[tuple[str, str]]:
        """A community's own layers as (name, TOML source)."""
        async with self.db.execute(
            "SELECT name, source FROM custom_layers WHERE platform=? AND community=? "
            "ORDER BY name",
            (platform, community),
        ) as cursor:
            return [(row[0], row[1]) for row in await cursor.fetchall()]

    async def save_custom_profile(
        self,
        platform: str,
        community: str,
        name: str,
        layers: tuple[str, ...],
        description: str,
        actor: Actor,
    ) -> None:
        """Store a community's own profile."""
        now = self._clock()
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO custom_profiles VALUES (?, ?, ?, ?, ?, ?, ?)",
                (platform, community, name, description, json.dumps(list(layers)), actor.id, now),
            )
            await db.execute(
                "INSERT INTO audit (at, platform, community, channel, thread, actor_id, "
                "actor_name, action, old, new) VALUES (?, ?, ?, '', '', ?, ?, ?, NULL, ?)",
                (now, platform, community, actor.id, actor.name, "define profile",
                 f"{name}: {', '.join(layers)}"),
            )

    async def custom_profiles(
        self, platform: str, community: str
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """A community's own profiles as (name, description, layers)."""
        async with self.db.execute(
            "SELECT name, description, layers FROM custom_profiles "
            "WHERE platform=? AND community=? ORDER BY name",
            (platform, community),
        ) as cursor:
            return [
                (row[0], row[1], tuple(json.loads(row[2]))) for row in await cursor.fetchall()
            ]

    # -- conversation memory ---------------------------------------------------------

    async def append_history(self, scope: Scope, role: str, content: str, keep: int) -> None:
        """Add a message to a channel's memory, keeping only the latest ``keep``."""
        await self.append_exchange(scope, [(role, content)], keep)

    async def append_exchange(
        self, scope: Scope, entries: Sequence[tuple[str, str]], keep: int
    ) -> None:
        """Add ``(role, content)`` messages to a channel's memory, atomically.

        The table keeps at most ``keep + HISTORY_TRIM_SLACK`` rows per channel: trimming
        runs every few messages, not on every one, and readers take the newest ``keep``.
        """
        if not entries:
            return
        key = scope.key()
        now = self._clock()
        values = [v for role, content in entries for v in (key, role, content, now)]
        rows = ", ".join(["(?, ?, ?, ?)"] * len(entries))
        async with self._write_lock_held():
            await self._set_durable(False)
            # One statement is its own atomic transaction: one round trip per exchange.
            await self.db.execute(
                f"INSERT INTO history (scope, role, content, at) VALUES {rows}", values
            )
            memory = self._memory.get(key)
            if memory is not None:
                memory.entries.extend(entries)
                while len(memory.entries) > memory.complete_to:
                    memory.entries.popleft()
            stored = self._stored.get(key)
            stored = None if stored is None else stored + len(entries)
            if stored is None or stored > keep + HISTORY_TRIM_SLACK:
                await self.db.execute(
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
        key = scope.key()
        memory = self._memory.get(key)
        if memory is None or memory.complete_to < limit:
            async with self._write_lock_held():  # no append may slip between read and cache
                async with self.db.execute(
                    "SELECT role, content FROM (SELECT id, role, content FROM history "
                    "WHERE scope=? ORDER BY id DESC LIMIT ?) ORDER BY id",
                    (key, limit),
                ) as cursor:
                    rows = [(str(row[0]), str(row[1])) for row in await cursor.fetchall()]
                memory = _Memory(deque(rows), limit)
                self._memory[key] = memory
                if len(self._memory) > HISTORY_CACHE_CHANNELS:
                    self._memory.popitem(last=False)
        self._memory.move_to_end(key)
        return list(memory.entries)[-limit:] if limit else []

    async def clear_history(self, scope: Scope) -> int:
        """Forget a channel's memory; returns how many messages were removed."""
        key = scope.key()
        async with self._transaction() as db:
            self._memory.pop(key, None)
            self._stored[key] = 0
            cursor = await db.execute("DELETE FROM history WHERE scope=?", (key,))
            return cursor.rowcount

    # -- channel settings -------------------------------------------------------------

    async def reply_mode(self, scope: Scope) -> str | None:
        """``always`` or ``addressed`` if set for this channel, else None."""
        async with self.db.execute(
            "SELECT reply_mode FROM channel_settings WHERE scope=?", (scope.key(),)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set_reply_mode(self, scope: Scope, mode: str, actor: Actor) -> None:
        """Set whether the bot answers every message here or only when addressed."""
        old = await self.reply_mode(scope)
        async with self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO channel_settings VALUES (?, ?)", (scope.key(), mode)
            )
            await db.execute(
                "INSERT INTO audit (at, platform, community, channel, thread, actor_id, "
                "actor_name, action, old, new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._clock(), scope.platform, scope.community, scope.channel,
                 scope.thread or "", actor.id, actor.name, "reply mode", old, mode),
            )
