"""The router: decides whether to answer, runs commands, and hands chat to the replier."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from lru import LRU

from bot.adapter import Adapter, MessageSink
from bot.automod import AutoModSource
from bot.backends.base import Backend
from bot.budgets import Budgets
from bot.commands import CommandReply, CommandRunner
from bot.errors import AdapterError, ForbiddenError
from bot.flood import FloodGuard
from bot.messages import CommunityMoved, IncomingMessage, OutgoingMessage, Scope
from bot.preview import Previewer
from bot.probes import ProbeRunner
from bot.queue import InferenceQueue
from bot.reply import ChatLimits, ChatReplier, ReplyStats, user_key
from bot.resolution import ProfileResolver
from bot.splitting import split_message
from bot.store import Actor, Store
from bot.summaries import Summariser
from bot.why import ReplyReports

log = logging.getLogger(__name__)

FORBIDDEN_QUIET = 120.0
"""Seconds cabot stays quiet in a place after the platform refused it permission to post
there: it generates nothing there meanwhile, so a channel it may not post in costs the
others no model time, and the operator reads one warning, not one per message."""
FORBIDDEN_PLACES = 4096
"""Places where posting was refused that are remembered at most."""

ReplyObserver = Callable[[IncomingMessage, ReplyStats], None]
"""Told about every finished chat reply (the CLI's ``--stats``, benchmarks)."""

__all__ = ["ChatLimits", "ReplyObserver", "ReplyStats", "Router"]


class Router:
    """Handles every incoming message from every adapter."""

    def __init__(
        self,
        store: Store,
        resolver: ProfileResolver,
        queue: InferenceQueue,
        backend: Backend,
        limits: ChatLimits,
        clock: Callable[[], float] = time.monotonic,
        flood: FloodGuard | None = None,
        budgets: Budgets | None = None,
        switch_probes: bool = True,
    ) -> None:
        self._store = store
        self._flood = flood
        self._limits = limits
        self._clock = clock
        self._forbidden: LRU[str, float] = LRU(FORBIDDEN_PLACES)
        """Until when cabot stays quiet in each place where it may not post."""
        reports = ReplyReports()
        self.commands = CommandRunner(store, resolver, enforces=backend.enforces,
                                      reports=reports, budgets=budgets,
                                      previewer=Previewer(queue, backend, limits),
                                      probes=ProbeRunner(queue, backend.count_tokens, limits)
                                      if switch_probes else None, limits=limits)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._observers: list[ReplyObserver] = []
        self._replier = ChatReplier(
            store, resolver, queue, backend, limits, self._notice, clock, flood, reports,
            budgets,
        )

    @property
    def limits(self) -> ChatLimits:
        """The context and memory limits every prompt is fitted to (`fit_window`)."""
        return self._limits

    def fit_window(self, n_ctx: int) -> None:
        """Keep every prompt within ``n_ctx`` tokens: the model's own context window, when
        it is smaller than CABOT_N_CTX."""
        if n_ctx < self._limits.n_ctx:
            log.info("prompts are fitted to the model's context window of %d tokens", n_ctx)
            self._limits.n_ctx = n_ctx

    def observe(self, observer: ReplyObserver) -> Callable[[], None]:
        """Call ``observer`` with each finished reply's stats; returns how to stop."""
        self._observers.append(observer)
        return lambda: self._observers.remove(observer)

    def sink_for(self, adapter: Adapter) -> MessageSink:
        """The sink an adapter pushes messages into; each is handled in its own task."""

        async def sink(message: IncomingMessage | CommunityMoved) -> None:
            if isinstance(message, CommunityMoved):
                await self._moved(message)
                return
            if self._closed:
                log.info("%s: stopping; not answering a message in %s", adapter.name,
                         message.scope.describe())
                return
            task = asyncio.create_task(self._guarded(adapter, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return sink

    @property
    def summaries(self) -> Summariser:
        """Writes the summaries of conversations that outgrew the context window."""
        return self._replier.summaries

    @property
    def in_progress(self) -> int:
        """Messages being handled right now."""
        return len(self._tasks)

    def close(self) -> None:
        """Take no new messages (a graceful stop); those in progress go on."""
        self._closed = True

    async def settle(self, within: float) -> bool:
        """Wait up to ``within`` s for the messages in progress; True once none is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=within)
        return not self._tasks

    async def drain(self) -> None:
        """Wait until every message received so far has been handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel messages still being handled (and summaries being written)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._replier.summaries.stop()

    async def _guarded(self, adapter: Adapter, message: IncomingMessage) -> None:
        try:
            await self.handle(adapter, message)
        except ForbiddenError as error:
            self._refused(adapter, message, error)
        except AdapterError as error:
            log.warning("%s: could not deliver a reply in %s: %s",
                        adapter.name, message.scope.describe(), error)
        except Exception:
            log.exception("%s: failed to handle a message in %s",
                          adapter.name, message.scope.describe())

    async def handle(self, adapter: Adapter, message: IncomingMessage) -> ReplyStats | None:
        """Answer one message if it is meant for the bot; a chat reply's stats."""
        if message.is_self or message.is_bot:
            return None
        command = self.commands.command_in(message)
        if command is not None:
            moderator = message.moderates_channel or message.moderates_community
            if not moderator and not await self._admit(adapter, message):
                return None
            if not isinstance(command, CommandReply):
                async def notify(reply: CommandReply) -> None:
                    await self.say(adapter, message, reply)

                automod = adapter if isinstance(adapter, AutoModSource) else None
                command = await self.commands.run(message, command, notify, automod)
            await self.say(adapter, message, command)
            return None
        if not message.addressed and await self._reply_mode(message.scope) != "always":
            return None
        if not message.text.strip():
            return None
        if not await self._admit(adapter, message):
            return None
        if self._forbidden.get(message.scope.key(), 0.0) > self._clock():
            log.debug("%s: not answering in %s: no permission to post there",
                      adapter.name, message.scope.describe())
            return None
        stats = await self._replier.reply(adapter, message)
        for observer in list(self._observers):
            observer(message, stats)
        return stats

    async def say(self, adapter: Adapter, message: IncomingMessage, reply: CommandReply) -> None:
        """Post ``reply`` in answer to ``message``, split to the platform's length."""
        caps = adapter.capabilities
        for chunk in split_message(reply.text, caps.max_message_length, caps.measure):
            await adapter.send(OutgoingMessage(
                in_reply_to=message, text=chunk, ephemeral=reply.ephemeral or reply.private,
                private=reply.private,
            ))

    def _refused(self, adapter: Adapter, message: IncomingMessage, error: ForbiddenError
                 ) -> None:
        """The platform refused a post in ``message``'s place: stay quiet there a while
        (`FORBIDDEN_QUIET`), saying so once."""
        key, now = message.scope.key(), self._clock()
        if self._forbidden.get(key, 0.0) > now:  # a reply started before the first refusal
            log.debug("%s: could not deliver a reply in %s: %s", adapter.name,
                      message.scope.describe(), error)
            return
        self._forbidden[key] = now + FORBIDDEN_QUIET
        log.warning("%s: could not deliver a reply in %s: %s Not answering chat there for "
                    "the next %.0f s.", adapter.name, message.scope.describe(), error,
                    FORBIDDEN_QUIET)

    async def _admit(self, adapter: Adapter, message: IncomingMessage) -> bool:
        """Whether to answer ``message``; a flooding user is told once, then ignored."""
        if self._flood is None:
            return True
        user = user_key(message)
        if self._flood.admit(user):
            return True
        if self._flood.tell_once(user):
            wait = max(1, round(self._flood.retry_after(user)))
            await self.say(adapter, message, CommandReply(
                f"You're sending messages faster than I can answer; I'll answer you again "
                f"in about {wait} s.", ephemeral=True))
        return False

    async def _moved(self, moved: CommunityMoved) -> None:
        actor = Actor(id=moved.platform, name=f"{moved.platform} ({moved.reason})")
        if await self._store.move_community(moved.platform, moved.old, moved.new, actor):
            log.info("%s community %s is now %s (%s): its settings and memory moved",
                     moved.platform, moved.old, moved.new, moved.reason)

    async def _notice(
        self, adapter: Adapter, message: IncomingMessage, text: str, ephemeral: bool
    ) -> None:
        await self.say(adapter, message, CommandReply(text, ephemeral))

    async def _reply_mode(self, scope: Scope) -> str | None:
        """The /answer mode of a thread, else of its channel."""
        conversations = self._store.conversations
        mode = await conversations.reply_mode(scope)
        if mode is None and scope.thread is not None:
            mode = await conversations.reply_mode(scope.model_copy(update={"thread": None}))
        return mode
