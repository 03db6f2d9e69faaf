"""Private answers on Discord to a command typed as a message (a preview).

A slash command's answer is ephemeral; a message cannot be, so a private answer to one
goes to the asker's direct messages, with one line in the channel saying where it went.
When the asker does not take direct messages from the server's members, it is posted in
the channel, whose text says what it is.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from lru import LRU

from adapters.discord.client import no_pings
from adapters.discord.requests import RequestGate
from bot.errors import AdapterError
from bot.messages import OutgoingMessage

log = logging.getLogger(__name__)

TOLD = 1024
"""Requests whose "sent privately" line was posted in the channel (once per request)."""
SENT_PRIVATELY = "📬 I sent you the answer in a direct message."
CANNOT_WRITE = ("(I can't send you a direct message — your privacy settings for this "
                "server don't allow it — so here it is.)")

Notice = Callable[[OutgoingMessage], Awaitable[object]]
"""Posts a line in the channel the command came from."""


class PrivateAnswers:
    """Sends a command's private answers to the asker's direct messages."""

    def __init__(self, gate: RequestGate) -> None:
        self._gate = gate
        self._told: LRU[str, bool] = LRU(TOLD)

    async def send(self, message: OutgoingMessage, text: str, source: discord.Message,
                   notice: Notice) -> discord.Message | None:
        """Post ``text`` to ``source``'s author privately; None to post it in the channel."""
        incoming = message.in_reply_to
        key = incoming.message_id
        if incoming.is_direct or self._told.get(key) is False:
            return None
        try:
            posted = await self._gate.call(
                source.author.send(text, allowed_mentions=no_pings()),
                f"a direct message to {incoming.author_name}")
        except AdapterError as error:
            log.info("discord: cannot answer %s privately (%s); answering in the channel",
                     incoming.author_id, error)
            if key not in self._told:
                self._told[key] = False
                await notice(OutgoingMessage(in_reply_to=incoming, text=CANNOT_WRITE))
            return None
        if key not in self._told:
            self._told[key] = True
            await notice(OutgoingMessage(in_reply_to=incoming, text=SENT_PRIVATELY))
        return posted
