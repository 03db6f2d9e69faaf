"""Prompt fitting: a channel's history and new message within the context window."""

from __future__ import annotations

import pytest

from bot.prompt_fit import TRUNCATION_NOTICE, PromptBudget, fit_prompt, truncate_to_tokens


def words(text: str) -> int:
    """A stand-in tokenizer: one token per word."""
    return len(text.split())


def test_everything_fits() -> None:
    history = [("user", "hi there"), ("assistant", "hello")]
    fitted = fit_prompt("Be nice.", history, "how are you", PromptBudget(512, 64), words)
    assert [(m.role, m.content) for m in fitted.messages] == [
        ("system", "Be nice."), ("user", "hi there"), ("assistant", "hello"),
        ("user", "how are you"),
    ]
    assert fitted.notice is None and fitted.dropped == 0


def test_oldest_history_is_dropped_first_and_reply_room_is_kept() -> None:
    history = [("user", f"old message number {i} " + "pad " * 20) for i in range(30)]
    budget = PromptBudget(n_ctx=300, reply_tokens=100)
    fitted = fit_prompt("sys", history, "new question", budget, words)
    used = sum(words(m.content) + 8 for m in fitted.messages)
    assert used <= budget.prompt_tokens
    kept = [m.content for m in fitted.messages[1:-1]]
    assert kept and kept == [c for _, c in history[-len(kept):]]
    assert fitted.dropped == 30 - len(kept)
    assert fitted.messages[-1].content == "new question"


def test_a_single_overlong_message_is_truncated_with_a_notice() -> None:
    huge = " ".join(f"w{i}" for i in range(5000))
    fitted = fit_prompt("sys", [("user", "earlier")], huge, PromptBudget(512, 128), words)
    assert fitted.notice == TRUNCATION_NOTICE
    last = fitted.messages[-1].content
    assert huge.startswith(last) and 0 < words(last) < 512
    assert sum(words(m.content) + 8 for m in fitted.messages) <= 512 - 128


def test_overlong_system_prompt_never_raises() -> None:
    system = "rule " * 2000
    fitted = fit_prompt(system, [], "hi", PromptBudget(512, 128), words)
    assert fitted.messages[-1].content == "hi"
    assert sum(words(m.content) + 8 for m in fitted.messages) <= 512 - 128


def longest_fitting_prefix(text: str, limit: int) -> int:
    """The reference answer, by halving (word counts only grow with the prefix)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if words(text[:middle]) <= limit else (low, middle - 1)
    return low


@pytest.mark.parametrize("limit", [1, 7, 300, 4999])
def test_truncation_finds_the_longest_prefix_with_few_counts(limit: int) -> None:
    text = " ".join(f"w{i}" * (1 + i % 5) for i in range(5000))
    counted: list[str] = []

    def counting(part: str) -> int:
        counted.append(part)
        return words(part)

    cut = truncate_to_tokens(text, limit, counting)
    best = longest_fitting_prefix(text, limit)
    assert text.startswith(cut) and words(cut) <= limit
    assert best - len(cut) <= best * 0.2  # cut back to a word boundary, no further
    assert cut == text[:best] or cut == text[:best].rsplit(" ", 1)[0]
    assert len(counted) <= 12  # halving alone takes 17
