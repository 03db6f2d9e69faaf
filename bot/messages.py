"""The neutral message model shared by the core and every adapter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Scope(BaseModel):
    """Where a message lives: platform, community, channel and optional thread.

    A Telegram private chat or a Discord DM is its own community and channel.
    """

    model_config = ConfigDict(frozen=True)

    platform: str
    community: str
    channel: str
    thread: str | None = None

    def key(self) -> str:
        """A stable string key for this exact place (for memory and queue fairness)."""
        return "/".join([self.platform, self.community, self.channel, self.thread or ""])

    def describe(self) -> str:
        """A short human description."""
        where = f"channel {self.channel}"
        if self.thread:
            where += f", thread {self.thread}"
        return f"{where} in {self.platform} community {self.community}"


ArgValue = str | tuple[str, ...] | None
"""A command argument: one word, several words, or None when left out."""


@dataclass(frozen=True)
class Command:
    """A typed command as adapters hand it to the core: which command, with which values."""

    path: tuple[str, ...]
    args: Mapping[str, ArgValue] = field(default_factory=dict)

    def word(self, name: str) -> str | None:
        """A one-word argument (None when left out)."""
        value = self.args.get(name)
        if isinstance(value, tuple):
            return " ".join(value)
        return value

    def words(self, name: str) -> tuple[str, ...]:
        """A many-word argument (empty when left out)."""
        value = self.args.get(name)
        if value is None:
            return ()
        return value if isinstance(value, tuple) else tuple(value.split())


class Attachment(BaseModel):
    """A file attached to a message, as its adapter read it.

    ``text`` is the file's content decoded as UTF-8, or None when the adapter did not read
    it (too large, not text) — ``problem`` then says why, in words for the sender.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    size: int
    text: str | None = None
    problem: str | None = None
    data: bytes | None = None
    """The file's bytes as read, text or not (a PNG character card is binary)."""


MAX_ATTACHMENT_BYTES = 64 * 1024
"""The largest attached file adapters read for the core (a layer's TOML is far smaller)."""
MAX_IMAGE_BYTES = 8 << 20
"""The largest attached PNG adapters read (a character card is a picture with the card in it)."""


class IncomingMessage(BaseModel):
    """A message as the core sees it, whatever platform it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    scope: Scope
    message_id: str
    author_id: str
    author_name: str
    text: str
    is_bot: bool = False
    is_self: bool = False
    is_direct: bool = False
    mentions_bot: bool = False
    replies_to_bot: bool = False
    reply_to_text: str | None = None
    """The text of the earlier message this one answers, if it answers one (as context)."""
    reply_to_author: str | None = None
    """Who wrote that earlier message: their display name."""
    moderates_channel: bool = False
    moderates_community: bool = False
    command: Command | None = None
    """A typed command (e.g. a Discord slash command); text commands are parsed by the core."""
    extras: dict[str, Any] = Field(default_factory=dict)
    """Adapter-only data (e.g. the platform's own message object). The core never reads it."""
    attachments: tuple[Attachment, ...] = ()
    """Files attached to a command (adapters read them only for commands)."""

    @property
    def addressed(self) -> bool:
        """Whether the bot was spoken to directly."""
        return self.is_direct or self.mentions_bot or self.replies_to_bot


class CommunityMoved(BaseModel):
    """A community changed its id on its platform (a Telegram group became a supergroup).

    Everything cabot keeps for it (bindings, locks, community layers and profiles, memory,
    reply modes, the audit history) moves to the new id.
    """

    model_config = ConfigDict(frozen=True)

    platform: str
    old: str
    new: str
    reason: str


class OutgoingMessage(BaseModel):
    """A message the core wants shown in reply to an incoming one."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    in_reply_to: IncomingMessage
    text: str
    ephemeral: bool = False
    """Only the author needs to see it (adapters that cannot do this post it normally)."""
    private: bool = False
    """Only the author may see it (a preview): ephemeral where the platform has that,
    else a direct message to the author where one can be sent; posted here otherwise (the
    text says what it is)."""


class SentMessage(BaseModel):
    """A message an adapter has posted, so it can later be edited."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    message_id: str
    in_reply_to: IncomingMessage
    extras: dict[str, Any] = Field(default_factory=dict)
