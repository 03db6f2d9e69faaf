"""The SQLite store, in three parts over one connection.

- `Database` (``connection``): the file, its schema migrations and its single writer.
- `AlignmentStore` (``alignment``): bindings, community layers and profiles, the audit log;
  committed with ``synchronous=FULL``, so they survive a power loss.
- `ConversationStore` (``conversation``): conversation memory and reply modes; memory
  commits with ``synchronous=NORMAL`` (no fsync per message).
- `SummaryStore` (``summaries``): remembered turns with their authors, and the summary of
  the turns folded away.
- `MemberStore` (``members``): the personal layers moderators allow and members pick.
- `UsageStore` (``usage``): tokens generated per member and community, and the daily
  budgets communities set.
- `VersionStore` (``versions``): every version of each place's alignment and of community
  layers and profiles; rolling back to one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bot.store.alignment import AlignmentStore
from bot.store.connection import BUSY_TIMEOUT, Database
from bot.store.conversation import HISTORY_CACHE_CHANNELS, ConversationStore
from bot.store.members import MemberStore
from bot.store.models import Actor, AuditEntry, Binding, Level, Lock, Place
from bot.store.moves import move_community
from bot.store.summaries import SummaryStore
from bot.store.usage import UsageStore
from bot.store.versions import VersionStore

__all__ = [
    "Actor",
    "AlignmentStore",
    "AuditEntry",
    "Binding",
    "ConversationStore",
    "Database",
    "Level",
    "Lock",
    "MemberStore",
    "Place",
    "Store",
    "SummaryStore",
    "UsageStore",
    "VersionStore",
]


class Store:
    """cabot's SQLite database: one connection, seen through its parts.

    Attributes:
        database: the connection, its migrations and its write lock.
        alignment: bindings, community layers and profiles, the audit log.
        conversations: conversation memory and reply modes.
        summaries: remembered turns with authors, and summaries of older turns.
        members: personal layers, allowed and picked.
        usage: tokens generated, and communities' daily budgets.
        versions: the history of alignment changes, and rolling back to a version.

    Args:
        memory_places: places whose conversation memory RAM holds at most.
    """

    def __init__(
        self, path: Path | str, clock: Callable[[], float] = time.time,
        busy_timeout: float = BUSY_TIMEOUT, *, memory_places: int = HISTORY_CACHE_CHANNELS,
    ) -> None:
        self._clock = clock
        self.database = Database(path, busy_timeout)
        self.alignment = AlignmentStore(self.database, clock)
        self.conversations = ConversationStore(self.database, clock,
                                               cached_places=memory_places)
        self.summaries = SummaryStore(self.database, self.conversations, clock)
        self.members = MemberStore(self.database, clock)
        self.usage = UsageStore(self.database, clock)
        self.versions = VersionStore(self.database, self.alignment, clock)

    async def open(self) -> None:
        """Open the database, creating or migrating its schema.

        Raises:
            SchemaTooNewError: the file was written by a newer cabot.
            StoreError: the file cannot be opened.
        """
        await self.database.open()
        await self.alignment.load()
        await self.conversations.load()
        await self.members.load()
        await self.usage.load()

    async def close(self) -> None:
        """Close the database (committed data is already on disk)."""
        await self.database.close()

    async def move_community(self, platform: str, old: str, new: str, actor: Actor) -> bool:
        """Move everything kept for community ``old`` to its new id ``new`` (audited).

        Returns False when nothing was kept under ``old`` (e.g. it moved already).
        """
        try:
            return await move_community(self.database, self.alignment, self.conversations,
                                        platform, old, new, actor, self._clock())
        finally:
            self.members.forget_cached(platform, old, new)
            self.usage.forget_cached(platform, old, new)

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
