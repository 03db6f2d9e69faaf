"""Floods are not amplified: a user who sends too much is told once, then not answered.

Every message the bot would answer costs the chat's rate budget on the platform (Telegram
allows a group 20 messages a minute). Without a guard, each refused request of a flooding
user would get its own "busy" reply and clog the chat for everyone. The guard counts what
each user asks for in a rolling window, tells them once when they go over (or when the
queue refuses them), and stays quiet until the window has passed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from cachetools import TTLCache

TRACKED_USERS = 100_000


class FloodGuard:
    """Per-user message counts over a rolling window, and who was told to slow down.

    Args:
        limit: messages a user may have answered per window.
        window: the window, in seconds.
        clock: the time source (injected in tests).
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._times: TTLCache[str, deque[float]] = TTLCache(TRACKED_USERS, window, timer=clock)
        self._told: TTLCache[str, bool] = TTLCache(TRACKED_USERS, window, timer=clock)

    def admit(self, user: str) -> bool:
        """Count one message of ``user``; False when it is over the limit (not answered)."""
        now = self._clock()
        times = self._times.get(user)
        if times is None:
            times = deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) >= self._limit:
            self._times[user] = times
            return False
        times.append(now)
        self._times[user] = times  # re-set, so the entry lives a window past its last use
        return True

    def tell_once(self, user: str) -> bool:
        """True the first time in a window that ``user`` should hear they are refused."""
        if user in self._told:
            return False
        self._told[user] = True
        return True

    def retry_after(self, user: str) -> float:
        """Seconds until ``user`` may be answered again (0 when now)."""
        times = self._times.get(user)
        if not times or len(times) < self._limit:
            return 0.0
        return max(0.0, self._window - (self._clock() - times[0]))
