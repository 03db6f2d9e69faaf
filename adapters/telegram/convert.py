"""Telegram messages as cabot's neutral messages.

Scope: the community is the chat (a group, or the private chat itself); so is the channel,
and a forum topic is a thread of it, so a topic follows the group's profile unless it has
its own. Triggers: a private chat always addresses the bot; in a group a command, an
``@mention`` of the bot or a reply to one of its messages does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from telegram import Chat, Message, MessageEntity, User

from adapters.telegram.admins import ANONYMOUS_ADMIN_ID
from bot.messages import IncomingMessage, Scope

PLATFORM = "telegram"
GROUP_TYPES = frozenset({Chat.GROUP, Chat.SUPERGROUP})


@dataclass(frozen=True)
class Sender:
    """Who wrote a message, as cabot names them."""

    id: str
    name: str
    is_bot: bool


@dataclass(frozen=True)
class Target:
    """Where a reply to an incoming message goes (from its ``extras``)."""

    chat_id: int
    thread_id: int | None
    message_id: int
    is_group: bool

    @classmethod
    def of(cls, message: IncomingMessage) -> Target:
        extras = message.extras
        return cls(int(extras["chat_id"]), extras.get("thread_id"),
                   int(extras["message_id"]), bool(extras.get("is_group")))


def sender_of(message: Message) -> Sender:
    """The author: a user, an anonymous admin (the group itself) or a channel."""
    if message.sender_chat is not None:
        chat = message.sender_chat
        title = chat.title or chat.username or str(chat.id)
        if chat.id == message.chat.id:
            name = message.author_signature or f"an anonymous admin of {title}"
            return Sender(f"chat{chat.id}", name, is_bot=False)
        return Sender(f"chat{chat.id}", title, is_bot=False)
    user = message.from_user
    if user is None:
        return Sender("unknown", "unknown", is_bot=False)
    # GroupAnonymousBot without a sender_chat is not a real admin post; treat it as a bot.
    return Sender(str(user.id), user.full_name or user.username or str(user.id),
                  is_bot=user.is_bot or user.id == ANONYMOUS_ADMIN_ID)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def strip_mentions(message: Message, me: User) -> tuple[str, bool]:
    """The message text (or a file's caption) without mentions of the bot, and whether
    there was one."""
    captioned = message.text is None
    text = (message.caption if captioned else message.text) or ""
    entities = message.caption_entities if captioned else message.entities
    if not entities:
        return text, False
    encoded = _utf16(text)
    spans: list[tuple[int, int]] = []
    for entity in entities:
        piece = encoded[entity.offset * 2 : (entity.offset + entity.length) * 2]
        if entity.type == MessageEntity.MENTION:
            mentioned = piece.decode("utf-16-le").lstrip("@").lower()
            if me.username and mentioned == me.username.lower():
                spans.append((entity.offset, entity.length))
        elif entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
            if entity.user.id == me.id:
                spans.append((entity.offset, entity.length))
    if not spans:
        return text, False
    for offset, length in sorted(spans, reverse=True):
        encoded = encoded[: offset * 2] + encoded[(offset + length) * 2 :]
    stripped = encoded.decode("utf-16-le")
    # "@cabot, what is X?" reads as "what is X?" once the name is gone.
    stripped = re.sub(r"[ \t]{2,}", " ", stripped).strip().lstrip(",:;").strip()
    return stripped, True


def command_for_other_bot(text: str, me: User) -> bool:
    """Whether ``text`` is a ``/command@somebot`` for a bot other than this one."""
    if not text.startswith("/"):
        return False
    word = text.split(maxsplit=1)[0]
    _, at, target = word.partition("@")
    return bool(at) and (me.username or "").lower() != target.lower()


def normalise_command(text: str) -> str:
    """``/start`` (what Telegram sends when someone opens the bot) answered as ``/help``."""
    words = text.split(maxsplit=1)
    if words and words[0].split("@", 1)[0].lower() == "/start":
        return "/help"
    return text


def replies_to(message: Message, me: User) -> bool:
    """Whether ``message`` answers one of the bot's messages."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        # In a forum every message "replies" to its topic's creation message.
        return False
    return replied.from_user is not None and replied.from_user.id == me.id


def replied_message(message: Message) -> Message | None:
    """The earlier message ``message`` answers (not a forum topic's opening notice)."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied


def thread_of(message: Message) -> int | None:
    """The forum topic of ``message``; replies in plain groups carry thread ids too."""
    if message.is_topic_message and message.message_thread_id is not None:
        return message.message_thread_id
    return None


def to_incoming(
    message: Message, me: User, text: str, *, mentions_bot: bool, moderator: bool
) -> IncomingMessage:
    """The neutral message for ``message`` (``text``: with mentions of the bot removed)."""
    chat = message.chat
    thread = thread_of(message)
    sender = sender_of(message)
    replied = replied_message(message)
    is_group = chat.type in GROUP_TYPES
    extras: dict[str, Any] = {
        "chat_id": chat.id,
        "thread_id": thread,
        "message_id": message.message_id,
        "is_group": is_group,
    }
    return IncomingMessage(
        scope=Scope(
            platform=PLATFORM,
            community=str(chat.id),
            channel=str(chat.id),
            thread=str(thread) if thread is not None else None,
        ),
        message_id=str(message.message_id),
        author_id=sender.id,
        author_name=sender.name,
        text=text,
        is_bot=sender.is_bot,
        is_self=message.from_user is not None and message.from_user.id == me.id,
        is_direct=chat.type == Chat.PRIVATE,
        mentions_bot=mentions_bot,
        replies_to_bot=replies_to(message, me),
        reply_to_text=(replied.text or replied.caption) if replied is not None else None,
        reply_to_author=sender_of(replied).name if replied is not None else None,
        moderates_channel=moderator,
        moderates_community=moderator,
        extras=extras,
    )
