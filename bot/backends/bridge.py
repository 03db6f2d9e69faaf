"""Handing a generation's events from a worker thread to the event loop.

Both engines generate in threads of their own. A ``ThreadBridge`` carries one
generation's text pieces, then its end or its error (a typed ``InferenceError``, never a
string), from the worker to the coroutine reading it, and tells the worker when the
reader has stopped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable

from bot.errors import InferenceError

_Event = str | InferenceError | None
"""A text piece, the error that ended the generation, or None for its normal end."""


class ThreadBridge:
    """One generation's events: sent from a worker thread, read on the event loop.

    Create it on the event loop. The worker calls ``send`` for each piece of text and
    then ``finish`` or ``fail`` once; the reader iterates ``pieces()``. When the reader
    stops early, or the event loop is gone, ``cancelled`` turns true: the worker should
    stop at its next step.

    Args:
        on_cancel: called (on the event loop) when the reader stops early, e.g. to wake
            the worker.
    """

    def __init__(self, on_cancel: Callable[[], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._on_cancel = on_cancel

    @property
    def cancelled(self) -> bool:
        """Whether nobody reads any more (safe from any thread)."""
        return self._cancelled.is_set()

    # -- the worker thread ----------------------------------------------------------

    def send(self, text: str) -> None:
        """Hand over a piece of the reply."""
        self._put(text)

    def finish(self) -> None:
        """The generation ended normally."""
        self._put(None)

    def fail(self, error: InferenceError) -> None:
        """The generation ended with ``error``; the reader raises it."""
        self._put(error)

    def _put(self, event: _Event) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: nobody is reading any more
            self._cancelled.set()

    # -- the event loop -------------------------------------------------------------

    async def pieces(self) -> AsyncGenerator[str, None]:
        """The reply's pieces until the worker finishes; closing it cancels the job.

        Raises:
            InferenceError: the error the worker ended the generation with.
        """
        ended = False
        try:
            while True:
                event = await self._events.get()
                if isinstance(event, str):
                    yield event
                    continue
                ended = True
                if event is not None:
                    raise event
                return
        finally:
            if not ended:
                self._cancelled.set()
                if self._on_cancel is not None:
                    self._on_cancel()
