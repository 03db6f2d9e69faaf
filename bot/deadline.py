"""A job's deadline: the task inside is cancelled when its time is up, on an injected clock.

The queue runs every job under one (``bot.queue``); tests pass a fake ``sleep``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable


@contextlib.asynccontextmanager
async def deadline(
    seconds: float, sleep: Callable[[float], Awaitable[None]]
) -> AsyncIterator[None]:
    """Like ``asyncio.timeout``, but the time passes in an injected ``sleep``.

    When ``seconds`` have slept, the task inside is cancelled and the block raises
    ``TimeoutError``; a cancellation from elsewhere stays a cancellation.
    """
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("a deadline runs inside a task")
    expired = False

    def fire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    async def expire() -> None:
        await sleep(seconds)
        fire()

    # The real clock needs no task of its own: a timer handle is a fraction of the cost.
    timer: asyncio.Task[None] | asyncio.TimerHandle = (
        asyncio.get_running_loop().call_later(seconds, fire) if sleep is asyncio.sleep
        else asyncio.create_task(expire(), name="cabot-job-deadline"))
    try:
        yield
    except asyncio.CancelledError as error:
        if expired and task.uncancel() == 0:
            raise TimeoutError from error
        raise
    finally:
        timer.cancel()
