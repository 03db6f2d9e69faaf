"""What a command handler gets (the message, the store, the resolver) and what it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.backends.base import LOCAL_SAMPLING, SamplingRule
from bot.budgets import Budgets
from bot.messages import IncomingMessage
from bot.reply import ChatLimits
from bot.resolution import ProfileResolver
from bot.store import Actor, Level, Store
from bot.why import ReplyReports

if TYPE_CHECKING:
    from bot.automod import AutoModSource
    from bot.preview import Previewer
    from bot.probes import ProbeRunner


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
    probes: ProbeRunner | None = None
    """Runs probes through the shared queue (when a switch selects a stack with probes)."""
    notify: Callable[[CommandReply], Awaitable[None]] | None = None
    """Posts a notice in answer to the command before its answer (e.g. probes running)."""
    automod: AutoModSource | None = None
    """The platform's AutoMod rules, where it has them (Discord)."""
    limits: ChatLimits | None = None
    """The context window and a reply's default room (for /profile explain)."""

    @property
    def actor(self) -> Actor:
        """The author, as the audit log records them."""
        return Actor(id=self.message.author_id, name=self.message.author_name)
