"""Reads for several caches at once: what a place not seen before costs, in one round trip.

Each part of the store (and the resolver built on it) keeps what a reply reads in RAM, and
reads a place it has not seen on first use, one query each. A reply to a message in a new
place would make four round trips to aiosqlite's thread before it starts (its alignment,
its member's personal layers, its community's budgets, its memory). Instead each cache
hands over the query it would run (`Read`), and `read_together` runs them all in one
call to the thread, under the write lock (as each cache reads on its own: no write can
slip between a read and what is kept of it), and gives each its rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiosqlite

from bot.store.connection import Database

log = logging.getLogger(__name__)

Rows = list[tuple[Any, ...]]
K = TypeVar("K", bound=tuple[Any, ...])
V = TypeVar("V")
KEYS_KEPT = 100_000
"""Keys a `KeySet` holds at most; a table with more is read place by place."""
K_contra = TypeVar("K_contra", contravariant=True)
V_contra = TypeVar("V_contra", contravariant=True)


class Cache(Protocol[K_contra, V_contra]):
    """What `cached_read` needs of a cache (an ``lru.LRU``, a dict)."""

    def __contains__(self, key: object, /) -> bool: ...

    def __setitem__(self, key: K_contra, value: V_contra, /) -> None: ...


class KeySet(Generic[K]):
    """The keys a small table has rows for, whole in RAM: a key not in it has no rows, so a
    place not seen before costs no query there (most communities set no budget, most
    members pick no personal layers).

    Each key starts with its platform and community. `load` reads every key when the store
    opens; a table with more than ``limit`` keys is not kept (every key may have rows, and
    is read). Writers `add` a key before its row is inserted, under the write lock, so a
    reader never misses a row; a removed row may leave its key behind, which only costs a
    read. A community whose rows moved in is `unsure` until the next `load`.
    """

    def __init__(self, sql: str, limit: int | None = None) -> None:
        self._sql = sql
        """Selects every key the table holds (each once)."""
        self._limit = KEYS_KEPT if limit is None else limit
        self._keys: set[K] | None = None
        """None: not loaded, or too many to keep."""
        self._unsure: set[tuple[Any, ...]] = set()

    async def load(self, db: aiosqlite.Connection) -> None:
        """Read every key the table holds (under the write lock, or before any writer)."""
        rows = await db.execute_fetchall(f"{self._sql} LIMIT {self._limit + 1}")
        keys: set[Any] = {tuple(row) for row in rows}
        self._keys = keys if len(keys) <= self._limit else None
        self._unsure.clear()

    def may_have(self, key: K) -> bool:
        """Whether the table may hold rows for ``key`` (False: it holds none)."""
        return self._keys is None or key in self._keys or key[:2] in self._unsure

    def add(self, key: K) -> None:
        """Note that ``key`` may have rows from now on (call before inserting them)."""
        if self._keys is not None:
            self._keys.add(key)
            if len(self._keys) > self._limit:
                self._keys = None

    def unsure(self, platform: str, community: str) -> None:
        """Any key of this community may have rows (they moved here: `bot.store.moves`)."""
        self._unsure.add((platform, community))
        if len(self._unsure) > self._limit:
            self._keys = None


@dataclass(frozen=True, slots=True)
class Read:
    """One query a cache would run, and what keeps its rows (called on the event loop)."""

    sql: str
    params: Sequence[Any]
    keep: Callable[[Rows], None]


def cached_read(
    cache: Cache[K, V], key: K, sql: str, parse: Callable[[Rows], V]
) -> Read | None:
    """The read that fills ``cache[key]`` with ``parse(rows)`` of ``sql`` (``key`` as its
    parameters); None when RAM holds it already. What was cached meanwhile is kept."""
    if key in cache:
        return None

    def keep(rows: Rows) -> None:
        if key not in cache:
            cache[key] = parse(rows)

    return Read(sql, key, keep)


async def read_together(database: Database, reads: Sequence[Read]) -> None:
    """Make ``reads`` in one round trip (with other writes and reads queued now: they
    share a batch, `bot.store.batch`) and give each its rows.

    Nothing is raised: a cache whose read failed reads again on its own when asked, and
    reports the failure then.
    """
    if not reads:
        return

    def fetched(results: list[Rows]) -> None:
        for read, rows in zip(reads, results, strict=True):
            try:
                read.keep(rows)
            except Exception:  # the cache reads on its own later, and says why then
                log.debug("keeping a read failed", exc_info=True)

    try:
        await database.writes.read([(read.sql, read.params) for read in reads], fetched)
    except Exception:
        log.debug("reading a place in one round trip failed", exc_info=True)
