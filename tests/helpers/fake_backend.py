"""A scripted inference backend for logic tests (the real engine has its own tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from bot.backends.base import LOCAL_SAMPLING, GenerationRequest
from bot.errors import InferenceError


def last_user_text(request: GenerationRequest) -> str:
    return next(m.content for m in reversed(request.messages) if m.role == "user")


class FakeBackend:
    """Replies with ``reply(request)``, streamed in pieces of ``piece_chars`` characters
    (``rate`` pieces per second if given).

    ``gate``, when set, must be released (``release()``) for each job before it streams,
    so tests control exactly when jobs run. ``requests`` records every request started.
    """

    name = "fake"

    def __init__(
        self,
        reply: Callable[[GenerationRequest], str] | str = "Hello from the fake backend.",
        *,
        piece_chars: int = 4,
        max_parallel: int = 1,
        gated: bool = False,
        fail_with: str | None = None,
        rate: float | None = None,
    ) -> None:
        self._reply = reply
        self.piece_chars = piece_chars
        self.max_parallel = max_parallel
        self.enforces = LOCAL_SAMPLING
        self.gated = gated
        self.fail_with = fail_with
        self.rate = rate
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
        """Let ``count`` gated jobs run."""
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
        for start in range(0, len(text), self.piece_chars):
            # ``rate`` pieces per second stands in for a model's pace; else no delay.
            await asyncio.sleep(1 / self.rate if self.rate else 0)
            yield text[start : start + self.piece_chars]
        self.finished.append(request)
