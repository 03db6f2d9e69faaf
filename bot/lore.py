"""A plan's soft parts that depend on the conversation: lorebook entries and post-history.

``ChatReplier.prepare`` (and the probes) build the prompt with these: the lorebook entries
the recent conversation triggers join the system prompt beside their layer's fragment
(``profiles.lore``), and post-history instructions follow the conversation, at the end of
the newest user turn (every chat format keeps a system message only at the start).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.backends.base import ChatMessage
from bot.prompt_fit import PER_MESSAGE_OVERHEAD
from profiles import ComposedPlan
from profiles.lore import LoreEntry


def system_prompt_for(plan: ComposedPlan, conversation: Sequence[str],
                      count_tokens: Callable[[str], int]) -> str:
    """The plan's system prompt with the lorebook entries ``conversation`` triggers.

    Args:
        plan: the composed plan.
        conversation: the texts of the recent messages, oldest first, the new one last.
        count_tokens: the backend's token counter (for each lorebook's budget).
    """
    if not plan.lore:
        return plan.system_prompt
    chosen: dict[str, tuple[LoreEntry, ...]] = {
        sourced.layer: sourced.value.select(conversation, count_tokens) for sourced in plan.lore
    }
    parts: list[str] = []
    placed: set[str] = set()
    for fragment in plan.prompt:
        entries = chosen.get(fragment.layer, ())
        parts.extend(entry.content for entry in entries if entry.position == "before")
        parts.append(fragment.value)
        parts.extend(entry.content for entry in entries if entry.position == "after")
        placed.add(fragment.layer)
    for layer, entries in chosen.items():
        if layer not in placed:
            parts.extend(entry.content for entry in entries)
    return "\n\n".join(parts)


def post_history_text(plan: ComposedPlan) -> str:
    """The plan's post-history instructions joined, or ``""``."""
    if not plan.post_history:
        return ""
    return "\n\n".join([part.value for part in plan.post_history])


def post_history_cost(plan: ComposedPlan, count_tokens: Callable[[str], int]) -> int:
    """Tokens the post-history instructions take (0 without any)."""
    text = post_history_text(plan)
    return count_tokens(text) + PER_MESSAGE_OVERHEAD if text else 0


def with_post_history(messages: tuple[ChatMessage, ...], plan: ComposedPlan
                      ) -> tuple[ChatMessage, ...]:
    """``messages`` with the post-history instructions after the newest user turn."""
    text = post_history_text(plan)
    if not text or not messages or messages[-1].role != "user":
        return messages
    last = messages[-1]
    return (*messages[:-1], ChatMessage(role="user", content=f"{last.content}\n\n{text}"))
