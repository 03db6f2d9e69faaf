"""Moving a community to a new id, with everything cabot keeps for it, in one transaction."""

from __future__ import annotations

import aiosqlite

from bot.store.alignment import AlignmentStore, record_audit
from bot.store.connection import Database
from bot.store.conversation import ConversationStore
from bot.store.models import Actor

COMMUNITY_TABLES = ("bindings", "custom_layers", "custom_profiles", "locks", "audit",
                    "personal_allowed", "personal_layers", "budgets", "token_usage",
                    "place_versions", "layer_versions", "profile_versions",
                    "community_settings")
"""Tables keyed by (platform, community, ...)."""
CHANNEL_TABLES = ("bindings", "audit", "personal_allowed", "place_versions")
"""Of those, the tables whose rows also name a channel (a Telegram group is its own)."""
SCOPE_TABLES = ("history", "channel_settings", "summaries")
"""Tables keyed by a place's ``Scope.key()`` string."""


async def move_community(
    database: Database,
    alignment: AlignmentStore,
    conversations: ConversationStore,
    platform: str,
    old: str,
    new: str,
    actor: Actor,
    now: float,
) -> bool:
    """Move every row of community ``old`` to ``new``; False when there was nothing to move.

    A channel named like the community (a Telegram group is community and channel at once)
    is renamed with it. What the new id already holds is replaced by what moves in.
    """
    if old == new:
        return False
    moved = 0
    try:
        async with database.transaction(durable=True) as db:
            moved = await _count(db, platform, old)
            if moved:
                for table in CHANNEL_TABLES:
                    await db.execute(
                        f"UPDATE OR REPLACE {table} SET channel=? "
                        "WHERE platform=? AND community=? AND channel=?",
                        (new, platform, old, old),
                    )
                for table in COMMUNITY_TABLES:
                    await db.execute(
                        f"UPDATE OR REPLACE {table} SET community=? "
                        "WHERE platform=? AND community=?",
                        (new, platform, old),
                    )
                for table in SCOPE_TABLES:
                    await _move_scopes(db, table, platform, old, new)
                await record_audit(db, now, (platform, new, "", ""), actor, "move community",
                                   old, new)
    finally:
        if moved:
            # Even a move rolled back: readers on this connection may have seen it half-done.
            alignment.mark_changed(platform, old, new)
            for community in (old, new):
                conversations.forget_cached(f"{platform}/{community}/")
    return bool(moved)


async def _count(db: aiosqlite.Connection, platform: str, old: str) -> int:
    total = 0
    for table in COMMUNITY_TABLES:
        async with db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE platform=? AND community=?", (platform, old)
        ) as cursor:
            row = await cursor.fetchone()
            total += row[0] if row else 0
    for table in SCOPE_TABLES:
        async with db.execute(
            f"SELECT COUNT(*) FROM {table} WHERE scope >= ? AND scope < ?",
            _scope_range(platform, old),
        ) as cursor:
            row = await cursor.fetchone()
            total += row[0] if row else 0
    return total


async def _move_scopes(
    db: aiosqlite.Connection, table: str, platform: str, old: str, new: str
) -> None:
    async with db.execute(
        f"SELECT DISTINCT scope FROM {table} WHERE scope >= ? AND scope < ?",
        _scope_range(platform, old),
    ) as cursor:
        scopes = [row[0] for row in await cursor.fetchall()]
    for key in scopes:
        _, _, channel, thread = key.split("/", 3)
        moved = "/".join([platform, new, new if channel == old else channel, thread])
        await db.execute(f"UPDATE OR REPLACE {table} SET scope=? WHERE scope=?", (moved, key))


def _scope_range(platform: str, community: str) -> tuple[str, str]:
    """The keys of a community's places are those in [low, high): an index range.

    ``Scope.key()`` is ``platform/community/channel/thread`` and '0' follows '/', so the
    keys that start with ``low`` are exactly those below ``high`` (SQLite's BINARY order).
    """
    low = f"{platform}/{community}/"
    return low, f"{platform}/{community}0"
