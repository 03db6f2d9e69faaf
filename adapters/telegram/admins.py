"""Who moderates a Telegram group: its creator and administrators, looked up and cached briefly.

Looking them up costs an API call, so it is done only for commands, and a group's list is
reused for ``ttl`` seconds (an admin who was just demoted keeps their rights that long).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache
from telegram import Chat, ChatMember, Message
from telegram.error import TelegramError

log = logging.getLogger(__name__)

ANONYMOUS_ADMIN_ID = 1087968824
"""GroupAnonymousBot: the sender of messages an anonymous administrator posts."""
ADMIN_STATUSES = frozenset({ChatMember.OWNER, ChatMember.ADMINISTRATOR})
CHATS_REMEMBERED = 1024
"""Groups whose administrator list is kept at most (the least recently asked go first)."""

FetchAdmins = Callable[[int], Awaitable[tuple[ChatMember, ...]]]
FetchMember = Callable[[int, int], Awaitable[ChatMember]]


class AdminCache:
    """Answers "is this sender a moderator of this chat?".

    Args:
        fetch_admins: ``getChatAdministrators`` for a chat id.
        fetch_member: ``getChatMember`` for a chat id and user id (used when the list fails).
        ttl: seconds a chat's administrator list is reused.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        fetch_admins: FetchAdmins,
        fetch_member: FetchMember,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch_admins = fetch_admins
        self._fetch_member = fetch_member
        self._admins: TTLCache[int, frozenset[int]] = TTLCache(
            maxsize=CHATS_REMEMBERED, ttl=ttl, timer=clock
        )
        self._fetching: dict[int, asyncio.Task[frozenset[int]]] = {}
        self.lookups = 0
        """API lookups made (for tests: the cache saves them)."""

    async def close(self) -> None:
        """Cancel lookups still running."""
        tasks = list(self._fetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, chat_id: int) -> None:
        """Drop a chat's list (e.g. the bot left it)."""
        self._admins.pop(chat_id, None)

    async def moderates(self, message: Message) -> bool:
        """Whether the sender of ``message`` may change the profile of its chat."""
        chat = message.chat
        if chat.type == Chat.PRIVATE:
            return True  # everyone moderates their own private chat with the bot
        if message.sender_chat is not None:
            # An anonymous admin posts as the group itself; a channel or linked chat
            # posting into the group is not one of its admins.
            return message.sender_chat.id == chat.id
        user = message.from_user
        if user is None or user.id == ANONYMOUS_ADMIN_ID:
            return False
        admins = await self._admins_of(chat.id)
        if admins is not None:
            return user.id in admins
        try:
            self.lookups += 1
            member = await self._fetch_member(chat.id, user.id)
        except TelegramError as error:
            log.warning("cannot check whether user %s administers chat %s: %s",
                        user.id, chat.id, error)
            return False
        return member.status in ADMIN_STATUSES

    async def _admins_of(self, chat_id: int) -> frozenset[int] | None:
        cached = self._admins.get(chat_id)
        if cached is not None:
            return cached
        task = self._fetching.get(chat_id)
        if task is None:
            # Commands arriving together share one lookup.
            task = asyncio.create_task(self._load(chat_id))
            self._fetching[chat_id] = task
            task.add_done_callback(lambda _: self._fetching.pop(chat_id, None))
        try:
            return await asyncio.shield(task)
        except TelegramError as error:
            log.info("cannot list the administrators of chat %s (%s); asking per user",
                     chat_id, error)
            return None

    async def _load(self, chat_id: int) -> frozenset[int]:
        self.lookups += 1
        members = await self._fetch_admins(chat_id)
        admins = frozenset(m.user.id for m in members if m.status in ADMIN_STATUSES)
        self._admins[chat_id] = admins
        return admins
