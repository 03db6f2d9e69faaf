"""Private replies on Telegram: a preview asked for in a group goes to the asker alone.

Telegram has no message only one member of a group sees, so a private reply is sent in
the asker's private chat with the bot, with one line in the group saying where it went.
A bot may only write to someone who has started a chat with it; when it may not (or the
asker is an anonymous admin or a channel), the reply is posted in the group, whose text
says what it is.
"""

from __future__ import annotations

import logging

from lru import LRU

from adapters.telegram.convert import Target
from adapters.telegram.outbox import Outbox
from bot.errors import ForbiddenError
from bot.messages import OutgoingMessage, SentMessage

log = logging.getLogger(__name__)

TOLD = 1024
"""Requests whose "sent privately" line was posted in the group (once per request)."""
SENT_PRIVATELY = "📬 I sent you the answer in our private chat."
CANNOT_WRITE = ("(I can't write to you privately until you start a chat with me, so here "
                "it is.)")


class PrivateReplies:
    """Sends private replies to the asker's private chat, through the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._told: LRU[tuple[int, int], bool] = LRU(TOLD)

    async def send(self, message: OutgoingMessage) -> SentMessage | None:
        """Post ``message`` in the asker's private chat; None to post it in the group."""
        incoming = message.in_reply_to
        target = Target.of(incoming)
        if not target.is_group:
            return None  # a private chat already is private
        key = (target.chat_id, target.message_id)
        if not incoming.author_id.isdigit():
            return None  # an anonymous admin or a channel has no private chat
        if self._told.get(key) is False:
            return None  # this request's first part could not be sent privately either
        private = incoming.model_copy(update={"extras": {
            **incoming.extras, "chat_id": int(incoming.author_id), "thread_id": None,
            "is_group": False,
        }})
        try:
            sent = await self._outbox.send(OutgoingMessage(in_reply_to=private,
                                                           text=message.text))
        except ForbiddenError as error:
            log.info("telegram: cannot reply privately to user %s (%s); replying in the group",
                     incoming.author_id, error)
            if key not in self._told:
                self._told[key] = False
                await self._outbox.send(OutgoingMessage(in_reply_to=incoming,
                                                        text=CANNOT_WRITE))
            return None
        if key not in self._told:
            self._told[key] = True
            await self._outbox.send(OutgoingMessage(in_reply_to=incoming, text=SENT_PRIVATELY))
        return sent
