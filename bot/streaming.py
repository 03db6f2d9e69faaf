"""Showing a reply as it streams: throttled edits, clean splits, final text always delivered."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.adapter import Adapter
from bot.errors import MessageGoneError, PlatformRateLimitError
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage
from bot.splitting import split_message

log = logging.getLogger(__name__)

SURPLUS_MARKER = "…"


class ReplyStreamer:
    """Keeps the messages of one reply in step with its growing text.

    The first text is posted at once; later growth is shown by editing at most once per
    ``capabilities.edit_interval`` seconds; text beyond the platform's message length
    continues in new messages. ``finish`` always delivers the complete final text.
    """

    FINISH_ATTEMPTS = 3

    def __init__(
        self,
        adapter: Adapter,
        incoming: IncomingMessage,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait: float = 60.0,
    ) -> None:
        self._adapter = adapter
        self._sleep = sleep
        self._max_wait = max_wait
        self._incoming = incoming
        self._clock = clock
        self._caps = adapter.capabilities
        self._sent: list[SentMessage] = []
        self._shown: list[str] = []
        self._last_change = float("-inf")
        self.edits = 0
        self.sends = 0

    @property
    def started(self) -> bool:
        """Whether any part of the reply is visible yet."""
        return bool(self._sent)

    async def update(self, text: str) -> None:
        """The reply so far; shown now if the edit budget allows, else later."""
        if not text.strip() or not self._caps.can_edit:
            return
        if self._sent and self._clock() - self._last_change < self._caps.edit_interval:
            return
        try:
            await self._sync(text)
        except PlatformRateLimitError as error:
            log.info("skipping a streaming edit: %s", error)

    async def finish(self, text: str) -> None:
        """Deliver the complete reply, sitting out short platform rate limits.

        Raises:
            PlatformRateLimitError: the platform asks to wait longer than ``max_wait``.
        """
        if not text.strip():
            text = "(no reply)"
        for _ in range(self.FINISH_ATTEMPTS - 1):
            try:
                await self._sync(text, final=True)
                return
            except PlatformRateLimitError as error:
                if error.retry_after > self._max_wait:
                    raise
                log.info("waiting %.1f s to deliver a final reply", error.retry_after)
                await self._sleep(error.retry_after)
        await self._sync(text, final=True)

    async def _sync(self, text: str, final: bool = False) -> None:
        chunks = split_message(text, self._caps.max_message_length, self._caps.measure)
        if final:
            # Messages streamed beyond a shorter final text (a length cap cut it) are
            # emptied to a marker rather than left showing text that was taken back.
            chunks += [SURPLUS_MARKER] * (len(self._sent) - len(chunks))
        for index, chunk in enumerate(chunks):
            if index < len(self._sent):
                if self._shown[index] != chunk:
                    await self._edit(index, chunk)
            else:
                sent = await self._adapter.send(
                    OutgoingMessage(in_reply_to=self._incoming, text=chunk)
                )
                self.sends += 1
                self._sent.append(sent)
                self._shown.append(chunk)
        self._last_change = self._clock()

    async def _edit(self, index: int, chunk: str) -> None:
        try:
            await self._adapter.edit(self._sent[index], chunk)
            self.edits += 1
        except MessageGoneError:
            # Someone deleted the message mid-stream: post the text anew.
            self._sent[index] = await self._adapter.send(
                OutgoingMessage(in_reply_to=self._incoming, text=chunk)
            )
            self.sends += 1
        self._shown[index] = chunk
