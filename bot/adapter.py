"""The seam between the core and a chat platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.messages import CommunityMoved, IncomingMessage, OutgoingMessage, SentMessage

MessageSink = Callable[[IncomingMessage | CommunityMoved], Awaitable[None]]
"""Where an adapter pushes every message it receives (and news of a community's new id)."""


@dataclass(frozen=True)
class Capabilities:
    """What a platform allows; the core adapts its replies to it.

    Attributes:
        max_message_length: characters per message after which a reply is split.
        can_edit: whether posted messages can be edited (streaming by edits).
        edit_interval: the minimum seconds between two edits of one reply.
        can_type: whether a typing indicator exists.
        typing_interval: how long one typing indication lasts, in seconds.
        measure: how the platform counts a message's length (characters by default).
    """

    max_message_length: int
    can_edit: bool = True
    edit_interval: float = 1.0
    can_type: bool = False
    typing_interval: float = 5.0
    measure: Callable[[str], int] = len


class Adapter(Protocol):
    """A chat platform as the core sees it.

    Methods raise ``bot.errors.AdapterError`` subclasses, never SDK exceptions.
    """

    name: str
    capabilities: Capabilities

    async def start(self, sink: MessageSink) -> None:
        """Connect and start pushing incoming messages into ``sink``; returns once running."""

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post a new message."""

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Replace the text of a message posted earlier."""

    async def show_typing(self, message: IncomingMessage) -> None:
        """Show a typing indicator where ``message`` was posted (if ``can_type``)."""

    async def stop(self) -> None:
        """Disconnect; returns once nothing is running."""
