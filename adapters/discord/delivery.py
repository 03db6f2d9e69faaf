"""Outgoing messages on Discord: posting, editing and showing typing.

The first part of a reply is a Discord reply to the message that asked; nobody is ever
pinged (``AllowedMentions.none()`` plus mentions neutralised in the text); every send and
edit in a channel waits for a slot in its budget, and every request goes through the
gate that turns Discord's errors into cabot's.
"""

from __future__ import annotations

from typing import Any

import discord
from lru import LRU

from adapters.discord.client import no_pings
from adapters.discord.convert import INTERACTION_KEY, MESSAGE_KEY, neutralize_mentions
from adapters.discord.limits import ChannelBudget
from adapters.discord.private import PrivateAnswers
from adapters.discord.requests import InteractionReply, RequestGate
from bot.errors import AdapterError
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage

MAX_MESSAGE_LENGTH = 2000
SENT_KEY = "discord_sent"
"""``SentMessage.extras`` key of the discord.py message object, for later edits."""
REPLIED_MEMORY = 1024  # messages already answered with a Discord reply


class Delivery:
    """Sends, edits and types for the Discord adapter.

    Args:
        gate: every request goes through it (deadlines, rate limits, errors).
        budget: sends and edits per channel per window.
    """

    def __init__(self, gate: RequestGate, budget: ChannelBudget) -> None:
        self._gate = gate
        self._budget = budget
        self._private = PrivateAnswers(gate)
        self._replied: LRU[str, None] = LRU(REPLIED_MEMORY)

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post ``message``: in answer to its interaction, or in its channel.

        The first part of a reply (and every private notice) is a Discord reply to the
        message that asked, so it is clear who is answered; nobody is pinged. A private
        answer (a preview) to a command typed as a message goes to the asker's direct
        messages where they take them.
        """
        incoming = message.in_reply_to
        text = neutralize_mentions(message.text, MAX_MESSAGE_LENGTH)
        handle = incoming.extras.get(INTERACTION_KEY)
        posted: discord.Message
        if isinstance(handle, InteractionReply):
            posted = await self._gate.call(
                self._gate.bounded(handle.send(text, message.ephemeral)), _where(incoming)
            )
        elif message.private and (posted_privately := await self._private.send(
                message, text, _source(incoming), self.send)) is not None:
            posted = posted_privately
        else:
            source = _source(incoming)
            self._gate.check(source.channel.id, _where(incoming))
            channel = source.channel
            async with self._budget.slot(channel.id):
                if message.ephemeral or self._first_reply(incoming.message_id):
                    request = channel.send(
                        text, allowed_mentions=no_pings(),
                        reference=source.to_reference(fail_if_not_exists=False),
                    )
                else:
                    request = channel.send(text, allowed_mentions=no_pings())
                posted = await self._gate.call(request, _where(incoming),
                                               channel_id=channel.id)
        return SentMessage(message_id=str(posted.id), in_reply_to=incoming,
                           extras={SENT_KEY: posted})

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Replace the text of a posted message (a 404 means someone deleted it)."""
        posted = sent.extras.get(SENT_KEY)
        if not isinstance(posted, discord.Message):
            raise AdapterError("That message was not posted on Discord by this adapter.")
        where = _where(sent.in_reply_to)
        content = neutralize_mentions(text, MAX_MESSAGE_LENGTH)
        if isinstance(posted, discord.WebhookMessage | discord.InteractionMessage):
            await self._gate.call(self._gate.bounded(
                posted.edit(content=content, allowed_mentions=no_pings())), where, editing=True)
            return
        async with self._budget.slot(posted.channel.id):
            request = posted.edit(content=content, allowed_mentions=no_pings())
            self._gate.check(posted.channel.id, where, request)
            await self._gate.call(request, where, editing=True, channel_id=posted.channel.id)

    async def show_typing(self, message: IncomingMessage) -> None:
        """'cabot is typing…' in the message's channel (an interaction shows 'thinking')."""
        if INTERACTION_KEY in message.extras:
            return
        channel = _source(message).channel
        await self._gate.call(_typing_once(channel), _where(message))

    def _first_reply(self, message_id: str) -> bool:
        if message_id in self._replied:
            return False
        self._replied[message_id] = None
        return True


def _source(incoming: IncomingMessage) -> discord.Message:
    source = incoming.extras.get(MESSAGE_KEY)
    if not isinstance(source, discord.Message):
        raise AdapterError("That message did not come from Discord.")
    return source


def _where(incoming: IncomingMessage) -> str:
    return f"Discord channel {incoming.scope.thread or incoming.scope.channel}"


async def _typing_once(channel: Any) -> None:
    # Awaiting discord.py's Typing sends one indication (it lasts 10 s on Discord).
    await channel.typing()
