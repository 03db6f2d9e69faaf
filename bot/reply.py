"""The reply path of one chat message, in three steps: prepare, stream, remember.

    prepare   resolve the place's alignment, refuse on input rules, fit the prompt to
              the context window and build the request
    stream    queue the job, show its text through the output filter and the streamer,
              cut at the length cap, deliver the final text
    remember  store the exchange in the channel's memory
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bot.adapter import Adapter
from bot.backends.base import SAMPLING_DEFAULTS, Backend, ChatMessage, GenerationRequest
from bot.budgets import Budgets
from bot.errors import CabotError, InferenceError, StoreError
from bot.filters import OutputFilter, refusal_for
from bot.flood import FloodGuard
from bot.group_chat import Conversation, LeadingNameGuard, conversation_for
from bot.lore import post_history_cost, system_prompt_for, with_post_history
from bot.messages import IncomingMessage
from bot.prompt_fit import FittedPrompt, PromptBudget, PromptMessages, fit_prompt
from bot.queue import InferenceQueue, Job
from bot.reasoning import ThinkingFilter
from bot.resolution import ProfileResolver
from bot.store import Store
from bot.streaming import ReplyStreamer
from bot.summaries import Summariser
from bot.warm import warm_place
from bot.why import ReplyReports, refusal_report
from profiles import ComposedPlan

log = logging.getLogger(__name__)

ELLIPSIS = "…"

Say = Callable[[Adapter, IncomingMessage, str, bool], Awaitable[None]]
"""Posts a notice in reply to a message; the flag asks for it to be ephemeral."""


@dataclass
class ChatLimits:
    """Context and memory limits for chat replies.

    One object, shared by everything that fits a prompt (replies, summaries, previews,
    probes): `Router.fit_window` lowers ``n_ctx`` to the model's own window once the
    backend has started, and all of them keep within it from then on.
    """

    n_ctx: int = 2048
    reply_tokens: int = 256
    history_messages: int = 40

    @property
    def reply_cap(self) -> int:
        """The most tokens any reply may take: half the context window (the prompt keeps
        the rest)."""
        return self.n_ctx // 2

    def reply_room(self, plan: ComposedPlan) -> int:
        """Tokens a reply under ``plan`` may take: its layers' ``max_tokens``, else
        ``reply_tokens`` (CABOT_REPLY_TOKENS), and never more than `reply_cap`."""
        return min(int(plan.sampling_values().get("max_tokens", self.reply_tokens)),
                   self.reply_cap)


@dataclass
class ReplyStats:
    """What happened while answering one message (for logs, tests and benchmarks)."""

    received_at: float = 0.0
    first_text_at: float | None = None
    finished_at: float | None = None
    pieces: int = 0
    edits: int = 0
    sends: int = 0
    text: str = ""

    def describe(self) -> str:
        """``first text after 0.21 s; 64 pieces in 0.80 s (80.0/s)``."""
        if self.first_text_at is None or self.finished_at is None:
            return "no text was generated"
        first = self.first_text_at - self.received_at
        total = self.finished_at - self.received_at
        rate = self.pieces / max(total - first, 1e-9)
        return (f"first text after {first:.2f} s; {self.pieces} pieces in {total:.2f} s "
                f"({rate:.1f}/s after the first); {self.edits} edits, {self.sends} messages")


@dataclass(frozen=True)
class PreparedReply:
    """A reply ready to queue: the plan it follows, its fitted prompt and its request."""

    plan: ComposedPlan
    fitted: FittedPrompt
    request: GenerationRequest
    conversation: Conversation | None = None
    """The conversation as the model reads it (names in group chats; bot.group_chat)."""

    @property
    def length_cap(self) -> int | None:
        """The plan's reply length cap in characters, if any."""
        return self.plan.max_reply_chars.value if self.plan.max_reply_chars else None

    def output_filter(self) -> OutputFilter:
        """A fresh stream filter for this reply's banned words and redactions."""
        return OutputFilter(
            banned=self.request.banned,
            redact=[s.value for s in self.plan.redact],
            echoes=(self.fitted.user_text,),
        )


def user_key(message: IncomingMessage) -> str:
    """Who sent ``message``, across the places of its platform (for rate limits)."""
    return f"{message.scope.platform}:{message.author_id}"


def build_request(plan: ComposedPlan, messages: tuple[ChatMessage, ...], reply_tokens: int,
                  session: str) -> GenerationRequest:
    """The backend request for a composed plan and a fitted prompt."""
    # reply_tokens is the budgeted reply length (already clamped to the context window).
    values = {**SAMPLING_DEFAULTS, **plan.sampling_values(), "max_tokens": reply_tokens}
    return GenerationRequest(
        messages=messages,
        temperature=float(values["temperature"]),
        top_p=float(values["top_p"]),
        top_k=int(values["top_k"]),
        min_p=float(values["min_p"]),
        repeat_penalty=float(values["repeat_penalty"]),
        max_tokens=int(values["max_tokens"]),
        stop=tuple(s.value for s in plan.stop),
        banned=tuple(s.value for s in plan.banned),
        grammar=plan.grammar.value if plan.grammar else None,
        session=session,
    )


def cut_to_length(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a sentence or word end, with an ellipsis."""
    if len(text) <= limit:
        return text
    window = text[: limit - 1]
    for mark in (". ", "! ", "? ", "\n"):
        at = window.rfind(mark)
        if at > limit * 0.6:
            return window[: at + 1].rstrip() + " " + ELLIPSIS
    at = window.rfind(" ")
    if at > limit * 0.6:
        window = window[:at]
    return window.rstrip() + ELLIPSIS


class ChatReplier:
    """Answers chat messages: each reply prepared, streamed and remembered."""

    def __init__(
        self,
        store: Store,
        resolver: ProfileResolver,
        queue: InferenceQueue,
        backend: Backend,
        limits: ChatLimits,
        say: Say,
        clock: Callable[[], float] = time.monotonic,
        flood: FloodGuard | None = None,
        reports: ReplyReports | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._queue = queue
        self._backend = backend
        self._limits = limits
        self._say = say
        self._clock = clock
        self._flood = flood
        self.reports = reports if reports is not None else ReplyReports()
        self.budgets = budgets
        """Daily token budgets, checked before a reply and counted after it."""
        self.summaries = Summariser(store, queue, backend.count_tokens, limits, budgets)
        """Summarises older turns when a conversation outgrows the context window."""
        self._made = PromptMessages()
        """Remembered turns ready for the next prompt (bot.prompt_fit)."""
        self._active: Counter[tuple[str, str]] = Counter()
        """Replies in progress per (place, user): a user with one already is not told
        their next request's queue position again."""

    async def reply(self, adapter: Adapter, message: IncomingMessage) -> ReplyStats:
        """Answer ``message`` with a streamed reply; returns what happened."""
        stats = ReplyStats(received_at=self._clock())
        # A place not seen yet: everything below reads it from RAM after one round trip.
        await warm_place(self._store, self._resolver, message, self._limits.history_messages,
                         self.budgets is not None)
        if self.budgets is not None:
            verdict = await self.budgets.check(message)
            if not verdict.allowed:  # told once per window (bot.budgets), then quiet
                if verdict.notice is not None:
                    await self._say(adapter, message, verdict.notice, True)
                return stats
        prepared = await self.prepare(adapter, message)
        if prepared is None:
            return stats
        user = user_key(message)
        try:
            job = self._queue.submit(prepared.request, message.scope.key(), user)
        except InferenceError as error:
            # Refused (rate limit, full queue): said once per window, so that a flood of
            # requests never becomes a flood of replies.
            if self._flood is None or self._flood.tell_once(user):
                await self._say(adapter, message, str(error), True)
            else:
                log.debug("not answering %s again in %s: %s", user,
                          message.scope.describe(), error)
            return stats
        place = (message.scope.key(), user)
        self._active[place] += 1
        try:
            visible = await self.stream(adapter, message, prepared, job, stats,
                                        tell_position=self._active[place] == 1)
        finally:
            self._active[place] -= 1
            if not self._active[place]:
                del self._active[place]
        # Queued before the exchange, so both commit in one batch (bot.store.batch).
        counted = self._count(message, stats.pieces)
        try:
            await self.remember(message, prepared, visible)
        finally:
            await self._counted(message, counted)
        return stats

    async def prepare(self, adapter: Adapter, message: IncomingMessage
                      ) -> PreparedReply | None:
        """The request for ``message``; None when it was answered already (refused, error)."""
        scope = message.scope
        try:
            resolved = await self._resolver.resolve(scope, member=message.author_id)
        except CabotError as error:
            await self._say(adapter, message, str(error), False)
            return None
        plan = resolved.plan
        refusal = refusal_for(
            message.text, [s.value for s in plan.refuse]
        )
        if refusal is not None:
            self.reports.record(scope, refusal_report(plan, message.text,
                                                      self._backend.enforces))
            await self._say(adapter, message, refusal, False)
            return None
        budget = PromptBudget(self._limits.n_ctx, self._limits.reply_room(plan))
        conversation = await conversation_for(self._store, message,
                                              self._limits.history_messages)
        history = conversation.history
        count = self._backend.count_tokens
        # Lorebook entries join when their keys come up; post-history instructions follow
        # the conversation (bot.lore).
        system = conversation.system(system_prompt_for(
            plan, [*(text for _, text in history), message.text] if plan.lore else (), count))
        budget = replace(budget, margin=budget.margin + post_history_cost(plan, count))
        fitted = fit_prompt(system, history, conversation.user_text, budget, count,
                            self._made)
        self.summaries.schedule(message, plan, fitted.dropped, len(history))
        if fitted.notice:
            await self._say(adapter, message, fitted.notice, True)
        request = build_request(plan, with_post_history(fitted.messages, plan),
                                budget.reply_tokens, scope.key())
        return PreparedReply(plan, fitted, request, conversation)

    async def stream(
        self,
        adapter: Adapter,
        message: IncomingMessage,
        prepared: PreparedReply,
        job: Job,
        stats: ReplyStats,
        tell_position: bool = True,
    ) -> str:
        """Show the job's text as it comes and deliver the final reply; the text shown."""
        streamer = ReplyStreamer(adapter, message, self._clock)
        output = prepared.output_filter()
        speakers = prepared.conversation.speakers if prepared.conversation else frozenset()
        names = LeadingNameGuard(speakers)
        thinking = ThinkingFilter()
        limit = prepared.length_cap
        typing = (asyncio.create_task(self._keep_typing(adapter, message, streamer))
                  if adapter.capabilities.can_type else None)
        visible = ""
        raw = ""
        failure: str | None = None
        told_position = not tell_position
        try:
            async for event in job.events():
                if event.kind == "position" and not told_position and event.position > 0:
                    told_position = True
                    ahead = event.position
                    await self._say(adapter, message, f"⏳ Queued: {ahead} request"
                                    f"{'s' if ahead != 1 else ''} ahead of yours.", True)
                elif event.kind == "text":
                    stats.pieces += 1
                    raw += event.text
                    said = thinking.feed(event.text)
                    if thinking.restarted():  # all so far was thought (bot.reasoning)
                        output, names = prepared.output_filter(), LeadingNameGuard(speakers)
                        visible = ""
                    visible += output.feed(names.feed(said))
                    if limit is not None and len(visible) >= limit:
                        job.cancel()
                        break
                    if visible.strip() and stats.first_text_at is None:
                        stats.first_text_at = self._clock()
                    await streamer.update(visible)
                elif event.kind == "error" and event.error is not None:
                    failure = str(event.error)
        finally:
            if typing is not None:
                typing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await typing
            if not job.finished:
                job.cancel()
        visible += output.feed(names.feed(thinking.flush()))
        visible += output.feed(names.flush()) + output.flush()
        cut = limit is not None and len(visible) >= limit
        if limit is not None:
            visible = cut_to_length(visible, limit)
        self.reports.record_reply(message.scope, prepared.plan, raw, cut=cut,
                                  sampling=self._backend.enforces)
        final = visible.strip()
        if failure is not None:
            final = f"{final}\n\n⚠️ {failure}" if final else f"⚠️ {failure}"
        await streamer.finish(final)
        stats.finished_at = self._clock()
        stats.edits, stats.sends, stats.text = streamer.edits, streamer.sends, final
        return visible.strip()

    async def remember(self, message: IncomingMessage, prepared: PreparedReply, text: str
                       ) -> None:
        """Store the exchange in the channel's memory (nothing when no text was shown)."""
        if not text:
            return
        said = prepared.fitted.user_text
        if prepared.conversation is not None:
            said = prepared.conversation.said(message, said)
        try:
            await self._store.conversations.append_exchange(
                message.scope,
                [("user", said), ("assistant", text)],
                self._limits.history_messages,
                authors=(message.author_name, None),
            )
        except StoreError as error:  # the reply is shown; only its memory is missing
            log.warning("could not remember an exchange in %s: %s",
                        message.scope.describe(), error)

    def _count(self, message: IncomingMessage, pieces: int) -> asyncio.Future[None] | None:
        """Count what the model generated for ``message`` against its budgets: queued now,
        committed with the next batch of writes (`_counted` waits for it)."""
        if self.budgets is None or not pieces:
            return None
        return self.budgets.queue_record(message, pieces)

    async def _counted(self, message: IncomingMessage, written: asyncio.Future[None] | None
                       ) -> None:
        if written is None:
            return
        try:
            await written
        except StoreError as error:  # the reply is shown; only its count is missing
            log.warning("could not count a reply's tokens in %s: %s",
                        message.scope.describe(), error)

    async def _keep_typing(
        self, adapter: Adapter, message: IncomingMessage, streamer: ReplyStreamer
    ) -> None:
        caps = adapter.capabilities
        if not caps.can_type:
            return
        while not streamer.started:
            try:
                await adapter.show_typing(message)
            except Exception as error:  # a typing indicator is never worth failing a reply
                log.debug("typing indicator failed: %s", error)
                return
            await asyncio.sleep(caps.typing_interval)
