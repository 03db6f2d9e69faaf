"""The SQLite connection: opening the file, schema migrations, and the single writer.

One connection, one writer: every write runs under a lock, and a write transaction starts
with ``BEGIN IMMEDIATE``, so concurrent coroutines never interleave half-done writes. The
journal is WAL. A durable transaction commits with ``synchronous=FULL`` and survives a
power loss; a non-durable write commits with ``synchronous=NORMAL`` (no fsync), which
survives a crash of the process and may lose the last few writes on a power loss, never
corrupting the file.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import SchemaTooNewError, StoreBusyError, StoreError
from bot.store.batch import GroupCommit

T = TypeVar("T")

log = logging.getLogger(__name__)

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
    # 2: layers a community locks into every stack it has.
    """
    CREATE TABLE locks (
        platform TEXT NOT NULL, community TEXT NOT NULL, layer TEXT NOT NULL,
        locked_by_id TEXT NOT NULL, locked_by TEXT NOT NULL, locked_at REAL NOT NULL,
        PRIMARY KEY (platform, community, layer)
    );
    """,
    # 3: a community's audit log read (and moved) without scanning everyone's.
    """
    CREATE INDEX audit_place ON audit (platform, community, id);
    """,
    # 4: who said each remembered message, summaries of older turns, personal layers
    # (what moderators allow, what members pick), token budgets and what was generated.
    """
    ALTER TABLE history ADD COLUMN author TEXT;
    CREATE TABLE summaries (
        scope TEXT PRIMARY KEY, text TEXT NOT NULL, turns INTEGER NOT NULL, at REAL NOT NULL
    );
    CREATE TABLE personal_allowed (
        platform TEXT NOT NULL, community TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '', thread TEXT NOT NULL DEFAULT '',
        layer TEXT NOT NULL, allowed_by TEXT NOT NULL, allowed_at REAL NOT NULL,
        PRIMARY KEY (platform, community, channel, thread, layer)
    );
    CREATE TABLE personal_layers (
        platform TEXT NOT NULL, community TEXT NOT NULL, user_id TEXT NOT NULL,
        layers TEXT NOT NULL, set_at REAL NOT NULL,
        PRIMARY KEY (platform, community, user_id)
    );
    CREATE TABLE budgets (
        platform TEXT NOT NULL, community TEXT NOT NULL, kind TEXT NOT NULL,
        tokens INTEGER NOT NULL, set_by TEXT NOT NULL, set_at REAL NOT NULL,
        PRIMARY KEY (platform, community, kind)
    );
    CREATE TABLE token_usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        platform TEXT NOT NULL, community TEXT NOT NULL, user_id TEXT NOT NULL,
        at REAL NOT NULL, tokens INTEGER NOT NULL
    );
    CREATE INDEX token_usage_community ON token_usage (platform, community, at);
    CREATE INDEX token_usage_user ON token_usage (platform, user_id, at);
    """,
    # 5: versions of each place's alignment, of community layers and of community
    # profiles (for history and rollback); what exists now becomes each one's version 1.
    """
    CREATE TABLE place_versions (
        platform TEXT NOT NULL, community TEXT NOT NULL,
        channel TEXT NOT NULL, thread TEXT NOT NULL, number INTEGER NOT NULL,
        actor_id TEXT NOT NULL, actor_name TEXT NOT NULL, at REAL NOT NULL,
        action TEXT NOT NULL, profile TEXT, layers TEXT, locks TEXT,
        PRIMARY KEY (platform, community, channel, thread, number)
    );
    CREATE TABLE layer_versions (
        platform TEXT NOT NULL, community TEXT NOT NULL, name TEXT NOT NULL,
        number INTEGER NOT NULL, actor_id TEXT NOT NULL, actor_name TEXT NOT NULL,
        at REAL NOT NULL, action TEXT NOT NULL, source TEXT,
        PRIMARY KEY (platform, community, name, number)
    );
    CREATE TABLE profile_versions (
        platform TEXT NOT NULL, community TEXT NOT NULL, name TEXT NOT NULL,
        number INTEGER NOT NULL, actor_id TEXT NOT NULL, actor_name TEXT NOT NULL,
        at REAL NOT NULL, action TEXT NOT NULL, description TEXT NOT NULL,
        layers TEXT NOT NULL,
        PRIMARY KEY (platform, community, name, number)
    );
    INSERT INTO place_versions
    SELECT b.platform, b.community, b.channel, b.thread, 1, b.set_by,
        COALESCE((SELECT a.actor_name FROM audit a WHERE a.platform = b.platform
                  AND a.community = b.community AND a.actor_id = b.set_by
                  ORDER BY a.id DESC LIMIT 1), b.set_by),
        b.set_at, 'set before history was kept', b.profile, b.layers,
        CASE WHEN b.channel = '' THEN (
            SELECT json_group_array(layer) FROM (
                SELECT l.layer FROM locks l WHERE l.platform = b.platform
                AND l.community = b.community ORDER BY l.locked_at, l.layer)) END
    FROM bindings b;
    INSERT INTO place_versions
    SELECT l.platform, l.community, '', '', 1, MAX(l.locked_by_id), MAX(l.locked_by),
        MAX(l.locked_at), 'set before history was kept', NULL, NULL,
        (SELECT json_group_array(layer) FROM (
            SELECT k.layer FROM locks k WHERE k.platform = l.platform
            AND k.community = l.community ORDER BY k.locked_at, k.layer))
    FROM locks l
    WHERE NOT EXISTS (SELECT 1 FROM bindings b WHERE b.platform = l.platform
                      AND b.community = l.community AND b.channel = '')
    GROUP BY l.platform, l.community;
    INSERT INTO layer_versions
    SELECT platform, community, name, 1, created_by, created_by, created_at,
        'defined before history was kept', source FROM custom_layers;
    INSERT INTO profile_versions
    SELECT platform, community, name, 1, created_by, created_by, created_at,
        'defined before history was kept', description, layers FROM custom_profiles;
    """,
    # 6: a community's own settings (what a failing probe does to a profile switch).
    """
    CREATE TABLE community_settings (
        platform TEXT NOT NULL, community TEXT NOT NULL, name TEXT NOT NULL,
        value TEXT NOT NULL, set_by TEXT NOT NULL, set_at REAL NOT NULL,
        PRIMARY KEY (platform, community, name)
    );
    """,
    # 7: each place's memory in one run of pages (its rows ordered by place, then id), so
    # a place read for the first time costs a page or two, not a page per turn; the ids
    # are handed out by cabot in blocks (`ConversationStore.load`), and history_ids keeps
    # the next one (so after a crash no id is handed out twice).
    """
    CREATE TABLE history_ids (next INTEGER NOT NULL);
    INSERT INTO history_ids SELECT MAX(
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'history'), 0),
        COALESCE((SELECT MAX(id) FROM history), 0)) + 1;
    CREATE TABLE history_by_place (
        scope TEXT NOT NULL, id INTEGER NOT NULL, role TEXT NOT NULL,
        content TEXT NOT NULL, at REAL NOT NULL, author TEXT,
        PRIMARY KEY (scope, id)
    ) WITHOUT ROWID;
    INSERT INTO history_by_place
        SELECT scope, id, role, content, at, author FROM history ORDER BY scope, id;
    DROP TABLE history;
    ALTER TABLE history_by_place RENAME TO history;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
MMAP_BYTES = 256 * 1024 * 1024
"""How much of the file SQLite reads through a memory map instead of read() calls: a big
store's pages come from the OS page cache without a system call each (reads only; writes
still go through the WAL)."""
BUSY_TIMEOUT = 5.0
"""Seconds a write waits for another program's lock on the file before giving up."""


class Database:
    """cabot's SQLite file: one aiosqlite connection and the lock of its only writer."""

    def __init__(self, path: Path | str, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self._path = str(path)
        self._busy_timeout = busy_timeout
        self._db: aiosqlite.Connection | None = None
        self._write_lock: asyncio.Lock | None = None
        self._durable: bool | None = None
        """The ``synchronous`` setting in effect: FULL (True), NORMAL (False), or unknown."""
        self.writes = GroupCommit(self)
        """Non-durable writes made after every reply (memory, usage), committed in batches."""

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
            await self._db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            await self._db.execute("PRAGMA synchronous=FULL")
            self._durable = True
            await self._db.execute(f"PRAGMA busy_timeout={round(self._busy_timeout * 1000)}")
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
        """Close the database (committed data is already on disk; queued writes first)."""
        if self._db is not None:
            try:
                await self.writes.drain()
            finally:
                db, self._db = self._db, None
                await db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The open connection, for reads; writes go through `locked` or `transaction`.

        Raises:
            StoreError: the store is not open.
        """
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
            async with self.locked() as db:
                await db.executescript(
                    f"BEGIN IMMEDIATE;\n{MIGRATIONS[number - 1]}\n"
                    f"PRAGMA user_version = {number};\nCOMMIT;"
                )

    @asynccontextmanager
    async def locked(
        self, *, durable: bool | None = None
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the write lock, outside a transaction: for single-statement writes.

        Args:
            durable: commit with ``synchronous=FULL`` (True) or ``NORMAL`` (False: no
                fsync); None leaves the setting as it is.
        """
        if self._write_lock is None:
            raise StoreError("The store is not open.")
        async with self._write_lock:
            db = self.db
            if durable is not None and durable != self._durable:
                # Unknown until it ran: a cancelled PRAGMA may still run in aiosqlite's thread.
                self._durable = None
                await db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            try:
                yield db
            except sqlite3.OperationalError as error:
                raise self.refused(error) from None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in aiosqlite's thread: several statements in one round trip.

        A write holds the write lock (`locked`) around it. aiosqlite has no public call
        for this; ``_execute`` is the one method it sends every call to its thread through.
        """
        db = self.db
        dispatch: Callable[..., Awaitable[Any]] = db._execute
        result: T = await dispatch(fn, db._conn)
        return result

    def refused(self, error: sqlite3.Error) -> StoreError:
        """A write SQLite refused, as a sentence (what happened, that nothing changed)."""
        if getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY,
                                                        sqlite3.SQLITE_LOCKED):
            return StoreBusyError(
                f"The database {self._path} is busy (another program is writing to it), so "
                "nothing was changed; try again in a moment."
            )
        return StoreError(f"The database {self._path} refused a write ({error}); nothing "
                          "was changed.")

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction under the write lock, rolled back on any exception.

        Args:
            durable: commit with ``synchronous=FULL`` (else ``NORMAL``: no fsync).
        """
        async with self.locked(durable=durable) as db:
            try:
                # Inside the try: aiosqlite runs a statement even when its awaiter is
                # cancelled, so a cancelled BEGIN must still be rolled back.
                await db.execute("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                await _rollback(db)
                raise


async def _rollback(db: aiosqlite.Connection) -> None:
    try:
        await asyncio.shield(db.execute("ROLLBACK"))
    except sqlite3.OperationalError:
        pass  # SQLite already rolled back (or the BEGIN never ran)
