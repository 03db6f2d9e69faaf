"""Conversation memory: fitting a channel's history into the model's context window."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.backends.base import ChatMessage

TRUNCATION_NOTICE = (
    "Your message was too long for the model's context window; only its beginning was read."
)
PER_MESSAGE_OVERHEAD = 8
"""Tokens a chat template adds around each message (role markers), a safe upper bound."""


@dataclass(frozen=True)
class PromptBudget:
    """How the context window is shared."""

    n_ctx: int
    reply_tokens: int
    margin: int = 16

    @property
    def prompt_tokens(self) -> int:
        return self.n_ctx - self.reply_tokens - self.margin


@dataclass(frozen=True)
class FittedPrompt:
    """The messages to send, and a notice for the user if their message was cut."""

    messages: tuple[ChatMessage, ...]
    notice: str | None
    user_text: str
    dropped: int


def truncate_to_tokens(text: str, limit: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (cut at a word where possible) within ``limit`` tokens."""
    if count_tokens(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    space = cut.rfind(" ")
    if space > low * 0.8:
        cut = cut[:space]
    return cut


def fit_prompt(
    system_prompt: str,
    history: Sequence[tuple[str, str]],
    user_text: str,
    budget: PromptBudget,
    count_tokens: Callable[[str], int],
) -> FittedPrompt:
    """Build the message list: system prompt, as much recent history as fits, the new message.

    The newest history is kept first. A new message that alone does not fit is truncated
    with a notice; never raises for length.
    """
    available = budget.prompt_tokens
    system = ChatMessage(role="system", content=system_prompt) if system_prompt else None
    if system is not None:
        available -= count_tokens(system_prompt) + PER_MESSAGE_OVERHEAD
    if available < 32:
        # The system prompt alone nearly fills the window: keep what we can of it.
        keep = max(budget.prompt_tokens // 2, 16)
        system = ChatMessage(
            role="system", content=truncate_to_tokens(system_prompt, keep, count_tokens)
        )
        available = budget.prompt_tokens - keep - PER_MESSAGE_OVERHEAD

    notice = None
    user_cost = count_tokens(user_text) + PER_MESSAGE_OVERHEAD
    if user_cost > available:
        user_text = truncate_to_tokens(user_text, available - PER_MESSAGE_OVERHEAD, count_tokens)
        notice = TRUNCATION_NOTICE
        user_cost = count_tokens(user_text) + PER_MESSAGE_OVERHEAD
    available -= user_cost

    kept: list[ChatMessage] = []
    for role, content in reversed(history):
        cost = count_tokens(content) + PER_MESSAGE_OVERHEAD
        if cost > available:
            break
        available -= cost
        kept.append(ChatMessage(role=role, content=content))
    kept.reverse()
    messages = ([system] if system is not None else []) + kept
    messages.append(ChatMessage(role="user", content=user_text))
    return FittedPrompt(tuple(messages), notice, user_text, len(history) - len(kept))
