"""Discord's per-channel message budget, kept before Discord has to answer 429.

Discord lets a bot post or edit about 5 times per 5 s in one channel, sends and edits
together, whichever reply they belong to. discord.py learns a route's bucket only from
the headers of answers it has already had, and sends and edits are different routes, so
several replies in a row in one channel would still collect 429s (and Discord bans
clients that pile them up). The budget waits before a request instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from lru import LRU

MARGIN = 0.1
"""Share of the window kept in hand for requests' travel time."""
CHANNELS = 4096
"""Channels whose recent requests are remembered."""


class ChannelBudget:
    """At most ``limit`` requests per ``window`` seconds in each channel.

    Args:
        limit: requests per window.
        window: seconds.
        clock: monotonic seconds.
        sleep: how to wait (injected in tests).
    """

    def __init__(
        self,
        limit: int = 5,
        window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limit = limit
        # Discord counts a fixed window from the first request it receives; requests reach
        # it a little after they leave, so keep a tenth of the window in hand.
        self._window = window * (1 + MARGIN)
        self._clock = clock
        self._sleep = sleep
        self._sent: LRU[int, list[float]] = LRU(CHANNELS)
        """Per channel: when each recent request was answered (inf while in flight)."""

    @contextlib.asynccontextmanager
    async def slot(self, channel_id: int) -> AsyncIterator[None]:
        """Hold one of the channel's requests for the block (wait until one is free).

        A request counts from when it is sent until a window after its answer came: Discord
        received it somewhere in between, and counts its window from there.
        """
        sent = self._sent.get(channel_id)
        if sent is None:
            sent = self._sent[channel_id] = []
        while True:
            now = self._clock()
            sent[:] = [at for at in sent if now - at < self._window]
            if len(sent) < self._limit:
                break
            finished = [at for at in sent if at != math.inf]
            wait = self._window - (now - min(finished)) if finished else self._window / 10
            await self._sleep(max(wait, 0.001))
        sent.append(math.inf)
        try:
            yield
        finally:
            sent.remove(math.inf)
            sent.append(self._clock())
