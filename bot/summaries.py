"""Summarising older turns when a conversation outgrows the context window.

When a reply's prompt could not hold every remembered turn (or memory holds as many turns
as it keeps), the oldest ones are summarised by the same model, as a background job of the
shared queue (``priority="low"``: it starts only when no reply is waiting), and folded into
the place's summary: the new summary replaces the old one and those turns are deleted, in
one transaction (`SummaryStore.fold`). Until then the reply goes on without them, as
before. The summary passes through the place's stream filter (banned words, redactions)
before it is stored, since ``/memory`` shows it. One summary is written per place at a
time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.backends.base import ChatMessage, GenerationRequest
from bot.budgets import Budgets
from bot.errors import CabotError
from bot.filters import OutputFilter
from bot.group_chat import speaker_label
from bot.messages import IncomingMessage, Scope
from bot.prompt_fit import PER_MESSAGE_OVERHEAD
from bot.queue import InferenceQueue
from bot.store import Store
from bot.store.summaries import Turn
from profiles import ComposedPlan

if TYPE_CHECKING:
    from bot.reply import ChatLimits

log = logging.getLogger(__name__)

SUMMARY_PROMPT = (
    "You keep the memory of a chat. Summarise the conversation below in a few short "
    "sentences: what was asked and answered, facts, decisions and open questions, and who "
    "said what when it matters (keep people's names). Write only the summary."
)
SUMMARY_TOKENS = 160
"""The longest summary, in tokens."""
KEEP_TURNS = 2
"""Turns never folded away: the latest exchange stays word for word."""
BACKGROUND_USER = "cabot:summaries"
"""Who the queue sees asking for summaries."""


class Summariser:
    """Writes the summaries of places whose conversation outgrew the context window.

    Args:
        store: where turns and summaries are kept.
        queue: the shared inference queue (summaries run there at low priority).
        count_tokens: the model's token count.
        limits: the model's context window and the turns remembered per place.
        budgets: where the tokens summaries generate are counted (to the community).
    """

    def __init__(self, store: Store, queue: InferenceQueue, count_tokens: Callable[[str], int],
                 limits: ChatLimits, budgets: Budgets | None = None) -> None:
        self._store = store
        self._queue = queue
        self._count = count_tokens
        self._limits = limits
        self._history = limits.history_messages
        self._budgets = budgets
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> int:
        """Places whose summary is being written."""
        return len(self._running)

    def schedule(self, message: IncomingMessage, plan: ComposedPlan, dropped: int,
                 remembered: int = 0) -> None:
        """Summarise the ``dropped`` oldest turns of ``message``'s place, in the background.

        A place that ``remembered`` as many turns as memory keeps (``CABOT_HISTORY_MESSAGES``)
        has its older half summarised too, before trimming would drop them.
        """
        key = message.scope.key()
        if self._history and remembered >= self._history:
            dropped = max(dropped, remembered - self._history // 2)
        if dropped <= 0 or key in self._running:
            return
        task = asyncio.create_task(self._summarise(message, plan, dropped),
                                   name=f"cabot-summary-{key}")
        self._running[key] = task
        task.add_done_callback(lambda done: self._done(key, done))

    def _done(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("summarising %s failed", key, exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until every summary being written is done (tests, benchmarks)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Stop writing summaries (nothing half-written is stored)."""
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def _summarise(self, message: IncomingMessage, plan: ComposedPlan, dropped: int
                         ) -> None:
        scope = message.scope
        turns = await self._store.summaries.recent(scope, self._history)
        old = await self._store.summaries.summary(scope)
        fold, source = self._fold(turns, dropped, old.text if old else "", message.is_direct)
        if not fold:
            return
        request = GenerationRequest(
            messages=(ChatMessage("system", SUMMARY_PROMPT), ChatMessage("user", source)),
            temperature=0.2, max_tokens=SUMMARY_TOKENS,
            banned=tuple(s.value for s in plan.banned),
        )
        text = await self._generate(scope, request)
        output = OutputFilter(banned=request.banned, redact=[s.value for s in plan.redact])
        summary = (output.feed(text) + output.flush()).strip()
        if not summary:
            return
        if not await self._store.summaries.fold(scope, summary, fold):
            log.info("not storing a summary of %s: its turns changed meanwhile",
                     scope.describe())

    def _fold(self, turns: list[Turn], dropped: int, old: str, direct: bool
              ) -> tuple[list[Turn], str]:
        """The oldest turns to fold (whole exchanges, what fits the window), and the text
        the model summarises: the summary so far and those turns."""
        wanted = min(dropped + dropped % 2, len(turns) - KEEP_TURNS)
        room = (self._limits.n_ctx - SUMMARY_TOKENS - self._count(SUMMARY_PROMPT)
                - 4 * PER_MESSAGE_OVERHEAD)
        head = f"The summary so far:\n{old}\n\n" if old else ""
        room -= self._count(head) + self._count("The conversation:\n")
        lines: list[str] = []
        for turn in turns[:max(wanted, 0)]:
            line = f"{_speaker(turn, direct)}: {' '.join(turn.content.split())}"
            cost = self._count(line) + 1
            if cost > room:
                break
            room -= cost
            lines.append(line)
        return turns[:len(lines)], head + "The conversation:\n" + "\n".join(lines)

    async def _generate(self, scope: Scope, request: GenerationRequest) -> str:
        try:
            job = self._queue.submit(request, f"{scope.key()}#summary", BACKGROUND_USER,
                                     priority="low")
        except CabotError as error:
            log.info("not summarising %s now: %s", scope.describe(), error)
            return ""
        text, pieces, failed = "", 0, False
        try:
            async for event in job.events():
                if event.kind == "text":
                    text += event.text
                    pieces += 1
                elif event.kind == "error":
                    failed = True
                    log.info("summarising %s failed: %s", scope.describe(), event.error)
        finally:
            if not job.finished:
                job.cancel()
        if self._budgets is not None and pieces:
            await self._budgets.usage.record(scope.platform, scope.community, "", pieces,
                                             keep=24 * 3600.0)
        return "" if failed else text


def _speaker(turn: Turn, direct: bool) -> str:
    if turn.role != "user":
        return "Assistant"
    return "User" if direct else speaker_label(turn.author)
