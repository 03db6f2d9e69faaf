"""Prompt fitting: a channel's system prompt, history and new message within the context window.

Counting tokens runs on the event loop; backends answer each text's count once and
remember it (``bot.backends.token_count``), and cutting an overlong text down to size
needs only a handful of counts.
"""

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


class PromptMessages:
    """History messages ready for a prompt, each made once per (role, text) and reused.

    A channel's remembered turns come back in every prompt until they fall out of its
    memory; each reply rebuilt all of them. Token counts are not kept here: a backend's
    count of a text may still improve (a remote server's exact count replaces an
    estimate), and each backend remembers its own. Bounded: when ``size`` messages were
    made since the last turn-over, those made before it are dropped (a message still in
    use is carried over by its next use).
    """

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._new: dict[tuple[str, str], ChatMessage] = {}
        self._old: dict[tuple[str, str], ChatMessage] = {}

    def messages(self, turns: Sequence[tuple[str, str]]) -> list[ChatMessage]:
        """The prompt messages for ``(role, content)`` turns, in their order."""
        new, old = self._new, self._old
        messages = []
        for turn in turns:
            made = new.get(turn)
            if made is None:
                made = old.get(turn)
                if made is None:
                    made = ChatMessage(*turn)
                if len(new) >= self._size:
                    self._old, self._new = old, new = new, {}
                new[turn] = made
            messages.append(made)
        return messages


def truncate_to_tokens(text: str, limit: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (cut at a word where possible) within ``limit`` tokens."""
    total = count_tokens(text)
    if total <= limit:
        return text
    low = _longest_prefix(text, limit, total, count_tokens)
    cut = text[:low]
    space = cut.rfind(" ")
    if space > low * 0.8:
        cut = cut[:space]
    return cut


def _longest_prefix(text: str, limit: int, total: int, count_tokens: Callable[[str], int]) -> int:
    """The length of the longest prefix of ``text`` within ``limit`` tokens (``total`` > limit).

    Tokens grow about evenly with the text, so each probe is placed where the count would
    cross ``limit`` if they did exactly, between a prefix that fits and one that does not:
    a long text is tokenized a handful of times rather than once per halving. Two probes
    in a row on the same side (uneven text) make the next one halve the range instead.
    """
    low, low_count = 0, 0  # fits
    high, high_count = len(text), total  # does not fit
    last_fitted: bool | None = None
    halve = False
    while high - low > 1:
        if halve:
            probe = (low + high) // 2
        else:
            share = (limit + 0.5 - low_count) / (high_count - low_count)
            probe = min(max(low + round(share * (high - low)), low + 1), high - 1)
        count = count_tokens(text[:probe])
        fitted = count <= limit
        if fitted:
            low, low_count = probe, count
        else:
            high, high_count = probe, count
        halve = not halve and fitted == last_fitted
        last_fitted = fitted
    return low


def fit_prompt(
    system_prompt: str,
    history: Sequence[tuple[str, str]],
    user_text: str,
    budget: PromptBudget,
    count_tokens: Callable[[str], int],
    made: PromptMessages | None = None,
) -> FittedPrompt:
    """Build the message list: system prompt, as much recent history as fits, the new message.

    The newest history is kept first. A new message that alone does not fit is truncated
    with a notice; never raises for length. ``made`` keeps the history's messages for the
    next prompt.
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

    start = len(history)  # the oldest turn kept
    for _, content in reversed(history):
        cost = count_tokens(content) + PER_MESSAGE_OVERHEAD
        if cost > available:
            break
        available -= cost
        start -= 1
    messages = [system] if system is not None else []
    messages += (made.messages(history[start:]) if made is not None
                 else [ChatMessage(role, content) for role, content in history[start:]])
    messages.append(ChatMessage(role="user", content=user_text))
    return FittedPrompt(tuple(messages), notice, user_text, start)
