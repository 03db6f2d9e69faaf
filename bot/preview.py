"""Previews: what a stack of layers would answer to a message, without changing anything.

Each preview generation is an ordinary job of the shared queue (rate limits, fairness and
timeouts apply as to any reply), prepared like a chat reply (`bot.reply.ChatReplier.prepare`)
— input refusals, the place's conversation with names in a group and its summary, lorebook
entries and post-history instructions, the prompt fitted to the context window, the plan's
sampling and hard rules — and filtered like one (banned words masked, redactions applied,
the length cap). Nothing is streamed to the chat, nothing is remembered, no summary is
scheduled and no rule report is recorded: the place stays as it was.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from bot.backends.base import Backend
from bot.errors import InferenceError
from bot.filters import OutputFilter, refusal_for
from bot.group_chat import (
    Conversation,
    conversation_for,
    direct_conversation,
    group_conversation,
)
from bot.lore import post_history_cost, system_prompt_for, with_post_history
from bot.messages import IncomingMessage
from bot.prompt_fit import PromptBudget, fit_prompt
from bot.queue import InferenceQueue, Job
from bot.reply import ChatLimits, build_request, cut_to_length, user_key
from bot.store import Store
from profiles import ComposedPlan


@dataclass(frozen=True)
class PreviewAnswer:
    """What one plan answered.

    Attributes:
        text: the reply as it would be shown (filtered and cut), or the refusal.
        refused: the message was refused on input (``text`` is the refusal).
        failure: why generation failed, if it did (``text`` holds what came before).
    """

    text: str
    refused: bool = False
    failure: str | None = None


class Previewer:
    """Answers a message with candidate plans through the shared queue, changing nothing."""

    def __init__(self, queue: InferenceQueue, backend: Backend, limits: ChatLimits) -> None:
        self._queue = queue
        self._backend = backend
        self._limits = limits
        self._ids = itertools.count(1)

    async def conversation(self, store: Store, asker: IncomingMessage, text: str | None
                           ) -> tuple[str, Conversation] | None:
        """The message to answer and its conversation, as a reply here would read them.

        With no ``text``, the latest message a person wrote here is answered again, after
        the turns before it (under its author's name in a group); None if there is none.
        """
        # The preview answers a message, not the command asking for it.
        asker = asker.model_copy(update={"reply_to_text": None, "reply_to_author": None,
                                         "replies_to_bot": False})
        scope, limit = asker.scope, self._limits.history_messages
        if text is not None:
            asked = asker.model_copy(update={"text": text})
            return text, await conversation_for(store, asked, limit)
        summary = await store.summaries.summary(scope)
        if asker.is_direct:
            history = await store.conversations.history(scope, limit)
            last = _last_user(role for role, _ in history)
            if last is None:
                return None
            said = history[last][1]
            return said, direct_conversation(history[:last],
                                             asker.model_copy(update={"text": said}), summary)
        turns = await store.summaries.recent(scope, limit)
        last = _last_user(turn.role for turn in turns)
        if last is None:
            return None
        turn = turns[last]
        author = turn.author or asker.author_name
        said_by = asker.model_copy(update={"text": turn.content, "author_name": author})
        return turn.content, group_conversation(turns[:last], said_by, summary)

    async def answer(
        self,
        asker: IncomingMessage,
        plans: Sequence[ComposedPlan],
        text: str,
        conversation: Conversation,
    ) -> list[PreviewAnswer]:
        """Each plan's answer to ``text`` in ``conversation``, in the order of ``plans``.

        Raises:
            InferenceError: the queue refused a job (rate limit, full): none then runs.
        """
        jobs: list[tuple[ComposedPlan, Job | PreviewAnswer]] = []
        try:
            for plan in plans:
                jobs.append((plan, self._submit(asker, plan, text, conversation)))
        except InferenceError:
            for _, job in jobs:
                if isinstance(job, Job):
                    job.cancel()
            raise
        try:
            return list(await asyncio.gather(*(
                _collect(plan, job) if isinstance(job, Job) else _ready(job)
                for plan, job in jobs
            )))
        finally:
            for _, job in jobs:
                if isinstance(job, Job) and not job.finished:
                    job.cancel()

    def _submit(self, asker: IncomingMessage, plan: ComposedPlan, text: str,
                conversation: Conversation) -> Job | PreviewAnswer:
        refusal = refusal_for(text, [s.value for s in plan.refuse])
        if refusal is not None:
            return PreviewAnswer(refusal, refused=True)
        limits, count = self._limits, self._backend.count_tokens
        budget = PromptBudget(limits.n_ctx, limits.reply_room(plan))
        history = conversation.history
        system = conversation.system(
            system_prompt_for(plan, [*(said for _, said in history), text], count))
        budget = replace(budget, margin=budget.margin + post_history_cost(plan, count))
        fitted = fit_prompt(system, history, conversation.user_text, budget, count)
        scope = asker.scope
        # A session of its own: the place's conversation keeps its cached prompt.
        session = f"{scope.key()}#preview{next(self._ids)}"
        request = build_request(plan, with_post_history(fitted.messages, plan),
                                budget.reply_tokens, session)
        return self._queue.submit(request, scope.key(), user_key(asker))


def _last_user(roles: Iterable[str]) -> int | None:
    """The index of the last ``user`` role, if any."""
    found = None
    for index, role in enumerate(roles):
        if role == "user":
            found = index
    return found


async def _ready(answer: PreviewAnswer) -> PreviewAnswer:
    return answer


async def _collect(plan: ComposedPlan, job: Job) -> PreviewAnswer:
    """The job's text as a reply would show it: filtered, and cut at the length cap."""
    output = OutputFilter(banned=[s.value for s in plan.banned],
                          redact=[s.value for s in plan.redact])
    limit = plan.max_reply_chars.value if plan.max_reply_chars else None
    visible = ""
    failure: str | None = None
    async for event in job.events():
        if event.kind == "text":
            visible += output.feed(event.text)
            if limit is not None and len(visible) >= limit:
                job.cancel()
                break
        elif event.kind == "error" and event.error is not None:
            failure = str(event.error)
    visible += output.flush()
    if limit is not None:
        visible = cut_to_length(visible, limit)
    return PreviewAnswer(visible.strip(), failure=failure)
