"""Fake clocks: monotonic time that moves only when a test (or a sleeper) moves it."""

from __future__ import annotations

import asyncio


class FakeClock:
    """Seconds that pass only when the test calls ``advance``.

    ``sleep`` waits until the clock has been advanced past its end, so the test decides
    exactly when a timeout fires.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, waking every sleeper whose time has come."""
        self.now += seconds
        for at, wake in self._sleepers:
            if at <= self.now and not wake.done():
                wake.set_result(None)
        self._sleepers = [(at, wake) for at, wake in self._sleepers if not wake.done()]

    async def sleep(self, seconds: float) -> None:
        """Until the clock has been advanced by ``seconds``."""
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, wake))
        self.advance(0)  # a sleep of nothing ends at once
        await wake


class SkippingClock(FakeClock):
    """A fake clock on which a sleep lets its time pass at once.

    For code that paces itself on the clock (an adapter sitting out a flood wait, a fake
    model streaming at its rate): nothing waits on wall time, yet every interval the code
    waited for shows in the clock's readings.
    """

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass now (other tasks still get to run)."""
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)
