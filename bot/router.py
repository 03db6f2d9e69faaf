"""The router: decides whether to answer, runs commands, and streams chat replies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.adapter import Adapter, MessageSink
from bot.backends.base import Backend, ChatMessage, GenerationRequest
from bot.commands import SAMPLING_DEFAULTS, CommandHandler, CommandReply, parse_command
from bot.errors import AdapterError, CabotError, InferenceError
from bot.filters import OutputFilter, refusal_for
from bot.messages import IncomingMessage, OutgoingMessage, Scope
from bot.prompt_fit import PromptBudget, fit_prompt
from bot.queue import InferenceQueue
from bot.resolution import ProfileResolver
from bot.splitting import split_message
from bot.store import Store
from bot.streaming import ReplyStreamer
from profiles import ComposedPlan

log = logging.getLogger(__name__)

ELLIPSIS = "…"


@dataclass(frozen=True)
class ChatLimits:
    """Context and memory limits for chat replies."""

    n_ctx: int = 2048
    reply_tokens: int = 256
    history_messages: int = 40


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
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._queue = queue
        self._backend = backend
        self._limits = limits
        self._clock = clock
        self._commands = CommandHandler(store, resolver)
        self._tasks: set[asyncio.Task[None]] = set()
        self.last_stats: ReplyStats | None = None

    def sink_for(self, adapter: Adapter) -> MessageSink:
        """The sink an adapter pushes messages into; each is handled in its own task."""

        async def sink(message: IncomingMessage) -> None:
            task = asyncio.create_task(self._guarded(adapter, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return sink

    async def drain(self) -> None:
        """Wait until every message received so far has been handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel messages still being handled."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _guarded(self, adapter: Adapter, message: IncomingMessage) -> None:
        try:
            await self.handle(adapter, message)
        except AdapterError as error:
            log.warning("%s: could not deliver a reply in %s: %s",
                        adapter.name, message.scope.describe(), error)
        except Exception:
            log.exception("%s: failed to handle a message in %s",
                          adapter.name, message.scope.describe())

    async def handle(self, adapter: Adapter, message: IncomingMessage) -> ReplyStats | None:
        """Answer one message if it is meant for the bot."""
        if message.is_self or message.is_bot:
            return None
        command = parse_command(message.text)
        if command is not None:
            reply = await self._commands.run(message, *command)
            await self._say(adapter, message, reply)
            return None
        if not message.addressed and await self._reply_mode(message.scope) != "always":
            return None
        if not message.text.strip():
            return None
        return await self._chat(adapter, message)

    async def _reply_mode(self, scope: Scope) -> str | None:
        """The /answer mode of a thread, else of its channel."""
        conversations = self._store.conversations
        mode = await conversations.reply_mode(scope)
        if mode is None and scope.thread is not None:
            mode = await conversations.reply_mode(scope.model_copy(update={"thread": None}))
        return mode

    async def _say(self, adapter: Adapter, message: IncomingMessage, reply: CommandReply) -> None:
        caps = adapter.capabilities
        for chunk in split_message(reply.text, caps.max_message_length, caps.measure):
            await adapter.send(
                OutgoingMessage(in_reply_to=message, text=chunk, ephemeral=reply.ephemeral)
            )

    async def _chat(self, adapter: Adapter, message: IncomingMessage) -> ReplyStats:
        stats = ReplyStats(received_at=self._clock())
        self.last_stats = stats
        scope = message.scope
        try:
            resolved = await self._resolver.resolve(scope)
        except CabotError as error:
            await self._say(adapter, message, CommandReply(str(error)))
            return stats
        plan = resolved.plan
        refusal = refusal_for(
            message.text, [(s.value.pattern, s.value.message) for s in plan.refuse]
        )
        if refusal is not None:
            await self._say(adapter, message, CommandReply(refusal))
            return stats

        reply_tokens = int(plan.sampling_values().get("max_tokens", self._limits.reply_tokens))
        budget = PromptBudget(self._limits.n_ctx, min(reply_tokens, self._limits.n_ctx // 2))
        history = await self._store.conversations.history(scope, self._limits.history_messages)
        fitted = fit_prompt(
            plan.system_prompt, history, message.text, budget, self._backend.count_tokens
        )
        request = build_request(plan, fitted.messages, budget.reply_tokens, scope.key())
        if fitted.notice:
            await self._say(adapter, message, CommandReply(fitted.notice, ephemeral=True))
        try:
            job = self._queue.submit(request, scope.key(), f"{scope.platform}:{message.author_id}")
        except InferenceError as error:
            await self._say(adapter, message, CommandReply(str(error), ephemeral=True))
            return stats

        streamer = ReplyStreamer(adapter, message, self._clock)
        output = OutputFilter(
            banned=request.banned,
            redact=[(s.value.pattern, s.value.replacement) for s in plan.redact],
        )
        limit = plan.max_reply_chars.value if plan.max_reply_chars else None
        typing = asyncio.create_task(self._keep_typing(adapter, message, streamer))
        visible = ""
        failure: str | None = None
        told_position = False
        try:
            async for event in job.events():
                if event.kind == "position" and not told_position and event.position > 0:
                    told_position = True
                    ahead = event.position
                    await self._say(adapter, message, CommandReply(
                        f"⏳ Queued: {ahead} request{'s' if ahead != 1 else ''} ahead of yours.",
                        ephemeral=True,
                    ))
                elif event.kind == "text":
                    stats.pieces += 1
                    visible += output.feed(event.text)
                    if limit is not None and len(visible) >= limit:
                        job.cancel()
                        break
                    if visible.strip() and stats.first_text_at is None:
                        stats.first_text_at = self._clock()
                    await streamer.update(visible)
                elif event.kind == "error":
                    assert event.error is not None
                    failure = str(event.error)
        finally:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing
            if not job.finished:
                job.cancel()
        visible += output.flush()
        if limit is not None:
            visible = cut_to_length(visible, limit)
        final = visible.strip()
        if failure is not None:
            final = f"{final}\n\n⚠️ {failure}" if final else f"⚠️ {failure}"
        await streamer.finish(final)
        stats.finished_at = self._clock()
        stats.edits, stats.sends, stats.text = streamer.edits, streamer.sends, final
        if visible.strip():
            keep = self._limits.history_messages
            await self._store.conversations.append_exchange(
                scope, [("user", fitted.user_text), ("assistant", visible.strip())], keep
            )
        return stats

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
