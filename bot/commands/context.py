"""What a command handler gets (the message, the store, the resolver) and what it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.backends.base import LOCAL_SAMPLING, SamplingRule
from bot.budgets import Budgets
from bot.messages import IncomingMessage
from bot.resolution import ProfileResolver
from bot.store import Actor, Level, Store
from bot.why import ReplyReports

if TYPE_CHECKING:
    from bot.preview import Previewer


@dataclass(frozen=True)
class CommandReply:
    """A command's answer; ``ephemeral`` when it concerns only the person who asked,
    ``private`` when no one else may see it (a preview: sent privately where possible)."""

    text: str
    ephemeral: bool = False
    private: bool = False


@dataclass(frozen=True)
class CommandContext:
    """One command run: who sent it, where, and the services it may use."""

    message: IncomingMessage
    store: Store
    resolver: ProfileResolver
    level: Level
    """Where the command applies (its scope option, else the place it was sent from)."""
    help_text: str
    enforces: frozenset[SamplingRule] = LOCAL_SAMPLING
    """The hard rules the backend in use enforces at sampling (for /profile explain)."""
    reports: ReplyReports = field(default_factory=ReplyReports)
    """What the rules did to each place's latest reply (for /profile why)."""
    budgets: Budgets | None = None
    """Daily token budgets (for /me and /budget); None: only communities' own apply."""
    previewer: Previewer | None = None
    """Generates previews through the shared queue (for /profile preview)."""

    @property
    def actor(self) -> Actor:
        """The author, as the audit log records them."""
        return Actor(id=self.message.author_id, name=self.message.author_name)
