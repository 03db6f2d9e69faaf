"""A message's place, read in one round trip when nothing of it is in RAM yet.

A reply reads its community's budgets, its place's alignment, its author's personal
layers and its place's memory; each is cached once read. For a place no message touched
since start-up those are up to four queries (fewer where RAM knows a table holds nothing
for it: `bot.store.alignment_index`, `bot.store.reads.KeySet`), each a round trip to
aiosqlite's thread. `warm_place` asks every cache what it would read and reads it all at
once, with the writes and reads other replies queued meanwhile (`bot.store.reads`), so
the reply then finds everything in RAM.
"""

from __future__ import annotations

from bot.messages import IncomingMessage
from bot.resolution import ProfileResolver
from bot.store import Store
from bot.store.reads import Read, read_together


async def warm_place(store: Store, resolver: ProfileResolver, message: IncomingMessage,
                     turns: int, budgets: bool) -> None:
    """Read what a reply to ``message`` needs and no cache holds, in one round trip.

    Args:
        turns: the remembered turns the reply reads.
        budgets: whether the reply checks its community's budgets.
    """
    scope = message.scope
    reads: list[Read] = []
    if budgets:
        read = store.usage.budgets_read(scope.platform, scope.community)
        if read is not None:
            reads.append(read)
    reads += resolver.reads(scope, member=message.author_id)
    read = store.conversations.memory_read(scope, turns)
    if read is not None:
        reads.append(read)
    if reads:  # even one: it joins the batch of writes queued now (one round trip for all)
        await read_together(store.database, reads)
