"""Showing a reply as it streams: throttled edits, clean splits, final text always delivered."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.adapter import Adapter
from bot.errors import MessageGoneError, PlatformRateLimitError
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage
from bot.splitting import split_message

log = logging.getLogger(__name__)


class ReplyStreamer:
    """Keeps the messages of one reply in step with its growing text.

    The first text is posted at once; later growth is shown by editing at most once per
    ``capabilities.edit_interval`` seconds; text beyond the platform's message length
    continues in new messages. ``finish`` always delivers the complete final text.
    """

    def __init__(
        self,
        adapter: Adapter,
        incoming: IncomingMessage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter = adapter
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
        """Deliver the complete reply."""
        if not text.strip():
            text = "(no reply)"
        await self._sync(text)

    async def _sync(self, text: str) -> None:
        chunks = split_message(text, self._caps.max_message_length)
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
