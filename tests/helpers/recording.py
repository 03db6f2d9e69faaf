"""An in-memory adapter that records what users would see."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.adapter import Capabilities, MessageSink
from bot.messages import IncomingMessage, OutgoingMessage, Scope, SentMessage


@dataclass
class Shown:
    """One posted message and every text it has shown."""

    id: str
    scope: Scope
    ephemeral: bool
    versions: list[str] = field(default_factory=list)
    private: bool = False

    @property
    def text(self) -> str:
        return self.versions[-1]


class RecordingAdapter:
    """Records sends and edits; ``say`` injects a message as a user would send it."""

    name = "recording"

    def __init__(self, capabilities: Capabilities | None = None) -> None:
        self.capabilities = capabilities or Capabilities(max_message_length=2000,
                                                         edit_interval=0.0)
        self.sink: MessageSink | None = None
        self.shown: list[Shown] = []
        self.typing = 0
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after some send or edit."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    async def start(self, sink: MessageSink) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.sink = None

    async def send(self, message: OutgoingMessage) -> SentMessage:
        shown = Shown(str(next(self._ids)), message.in_reply_to.scope, message.ephemeral,
                      [message.text], message.private)
        self.shown.append(shown)
        self._changed.set()
        return SentMessage(message_id=shown.id, in_reply_to=message.in_reply_to)

    async def edit(self, sent: SentMessage, text: str) -> None:
        next(s for s in self.shown if s.id == sent.message_id).versions.append(text)
        self._changed.set()

    async def show_typing(self, message: IncomingMessage) -> None:
        self.typing += 1

    def texts(self, scope: Scope | None = None) -> list[str]:
        """The final text of every message shown (in ``scope`` if given)."""
        return [s.text for s in self.shown if scope is None or s.scope == scope]

    def every_version(self) -> list[str]:
        """Every text users could have seen at any moment."""
        return [v for s in self.shown for v in s.versions]


def message(
    text: str,
    *,
    channel: str = "general",
    community: str = "guild",
    thread: str | None = None,
    author: str = "user",
    moderator: bool = False,
    community_moderator: bool = False,
    addressed: bool = True,
    is_bot: bool = False,
) -> IncomingMessage:
    """An incoming message as an adapter would build it."""
    return IncomingMessage(
        scope=Scope(platform="test", community=community, channel=channel, thread=thread),
        message_id=text[:10],
        author_id=author,
        author_name=author,
        text=text,
        mentions_bot=addressed,
        is_bot=is_bot,
        moderates_channel=moderator or community_moderator,
        moderates_community=community_moderator,
    )
