"""A scripted inference backend for logic tests (the real engine has its own tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

from bot.backends.base import LOCAL_SAMPLING, GenerationRequest
from bot.errors import InferenceError


def last_user_text(request: GenerationRequest) -> str:
    return next(m.content for m in reversed(request.messages) if m.role == "user")


class FakeBackend:
    """Replies with ``reply(request)``, streamed in pieces of ``piece_chars`` characters.

    ``rate``, when given, paces the stream like a model: that many pieces per second,
    waited out with ``sleep`` (pass a fake clock's ``sleep`` to stream in fake time).
    ``gated`` jobs wait for a ``release()`` each before they stream, so tests control
    exactly when jobs run; with ``pause_after`` a job also stops after that many pieces
    until the next ``release()``, so a test can act while a reply is half shown.
    ``requests`` records every request started, ``finished`` every one streamed to the end.
    """

    name = "fake"

    def __init__(
        self,
        reply: Callable[[GenerationRequest], str] | str = "Hello from the fake backend.",
        *,
        piece_chars: int = 4,
        max_parallel: int = 1,
        gated: bool = False,
        pause_after: int | None = None,
        fail_with: str | None = None,
        rate: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._reply = reply
        self.piece_chars = piece_chars
        self.max_parallel = max_parallel
        self.enforces = LOCAL_SAMPLING
        self.gated = gated
        self.pause_after = pause_after
        self.fail_with = fail_with
        self.rate = rate
        self._sleep = sleep
        self.requests: list[GenerationRequest] = []
        self.finished: list[GenerationRequest] = []
        self._gate: asyncio.Queue[None] = asyncio.Queue()
        self._arrived = asyncio.Event()
        self.started = False

    async def wait_for_requests(self, count: int) -> None:
        """Until ``count`` requests have reached the backend."""
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def release(self, count: int = 1) -> None:
        """Let ``count`` gated jobs run (or paused ones go on)."""
        for _ in range(count):
            self._gate.put_nowait(None)

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def text_for(self, request: GenerationRequest) -> str:
        return self._reply(request) if callable(self._reply) else self._reply

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        self._arrived.set()
        if self.gated:
            await self._gate.get()
        if self.fail_with is not None:
            raise InferenceError(self.fail_with)
        text = self.text_for(request)
        for index, start in enumerate(range(0, len(text), self.piece_chars)):
            if index == self.pause_after:
                await self._gate.get()
            # ``rate`` pieces per second stand in for a model's pace; else no delay.
            if self.rate:
                await self._sleep(1 / self.rate)
            else:
                await asyncio.sleep(0)
            yield text[start : start + self.piece_chars]
        self.finished.append(request)
