"""A job's deadline: the task inside is cancelled when its time is up, on an injected clock.

The queue runs every job under one (``async with Deadline(seconds, sleep)``,
``bot.queue``); tests pass a fake ``sleep``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType


class Deadline:
    """Like ``asyncio.timeout``, but the time passes in an injected ``sleep``.

    When ``seconds`` have slept, the task inside is cancelled and the block raises
    ``TimeoutError``; a cancellation from elsewhere stays a cancellation. A class rather
    than an ``asynccontextmanager``: every reply enters one, and a generator-based
    manager costs a generator and its steps on top.
    """

    __slots__ = ("_expired", "_seconds", "_sleep", "_task", "_timer")

    def __init__(self, seconds: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        self._seconds = seconds
        self._sleep = sleep
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.Task[None] | asyncio.TimerHandle | None = None
        self._expired = False

    def _fire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def _expire(self) -> None:
        await self._sleep(self._seconds)
        self._fire()

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline runs inside a task")
        self._task = task
        # The real clock needs no task of its own: a timer handle is a fraction of the cost.
        self._timer = (
            asyncio.get_running_loop().call_later(self._seconds, self._fire)
            if self._sleep is asyncio.sleep
            else asyncio.create_task(self._expire(), name="cabot-job-deadline"))

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if (kind is asyncio.CancelledError and self._expired and self._task is not None
                and self._task.uncancel() == 0):
            raise TimeoutError from error
