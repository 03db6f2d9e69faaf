"""Lorebooks: prompt fragments a layer adds only when their keys come up in conversation.

A layer may carry a lorebook (SillyTavern's *character book*, as a card brings it): entries
with keys and content. An entry enters the prompt when one of its keys appears in the
recent conversation (the last ``scan_depth`` messages, the new one included), and, if it
is ``selective``, one of its secondary keys too; a ``constant`` entry always does. The
entries found are kept within the book's ``token_budget``: the highest ``priority`` first
(then the lowest ``insertion_order``), and placed in ``insertion_order`` — before the
layer's own prompt fragment (``position = "before"``) or after it.

Keys match as whole words, case-insensitively unless ``case_sensitive``; with
``use_regex`` each key is a regular expression. Keys come from strangers' cards, so a
regular expression gets a time limit and one that runs out counts as no match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, model_validator

REGEX_TIMEOUT = 0.05
"""Seconds one key's regular expression may search one message."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoreEntry(_Strict):
    """One keyword-triggered prompt fragment."""

    keys: tuple[str, ...] = ()
    content: str = Field(min_length=1, max_length=8000)
    name: str = ""
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    """Needs one of ``secondary_keys`` too."""
    constant: bool = False
    """Always enters the prompt (within the budget), keys or not."""
    case_sensitive: bool = False
    use_regex: bool = False
    insertion_order: int = 100
    priority: int = 10
    position: Literal["before", "after"] = "after"

    @model_validator(mode="after")
    def _triggerable(self) -> LoreEntry:
        if not self.constant and not any(key.strip() for key in self.keys):
            raise ValueError("an entry needs at least one key, or constant = true")
        if self.use_regex:
            for key in (*self.keys, *self.secondary_keys):
                try:
                    regex.compile(key)
                except regex.error as error:
                    raise ValueError(f"key {key!r} is not a valid regular expression "
                                     f"({error})") from error
        return self

    def _matchers(self, keys: tuple[str, ...]) -> list[regex.Pattern[str]]:
        flags = regex.VERSION0 | (0 if self.case_sensitive else regex.IGNORECASE)
        patterns = []
        for key in keys:
            key = key.strip()
            if not key:
                continue
            source = key if self.use_regex else rf"(?<!\w){regex.escape(key)}(?!\w)"
            patterns.append(regex.compile(source, flags))
        return patterns

    def triggered_by(self, texts: Sequence[str]) -> bool:
        """Whether ``texts`` (the recent conversation) bring this entry into the prompt."""
        if self.constant:
            return True
        if not _any_match(self._matchers(self.keys), texts):
            return False
        return not self.selective or not self.secondary_keys or _any_match(
            self._matchers(self.secondary_keys), texts)


def _any_match(patterns: Sequence[regex.Pattern[str]], texts: Sequence[str]) -> bool:
    for pattern in patterns:
        for text in texts:
            try:
                if pattern.search(text, timeout=REGEX_TIMEOUT):
                    return True
            except TimeoutError:
                continue
    return False


class Lorebook(_Strict):
    """A layer's keyword-triggered fragments and how much of the prompt they may take."""

    name: str = ""
    scan_depth: int = Field(default=4, ge=1, le=100)
    """How many of the latest messages (the new one included) are searched for keys."""
    token_budget: int = Field(default=256, ge=1, le=8192)
    entries: tuple[LoreEntry, ...] = Field(min_length=1)

    def select(self, conversation: Sequence[str], count_tokens: Callable[[str], int]
               ) -> tuple[LoreEntry, ...]:
        """The entries ``conversation`` (oldest first) triggers, within the token budget.

        Returns them in insertion order.
        """
        recent = list(conversation[-self.scan_depth:])
        found = [entry for entry in self.entries if entry.triggered_by(recent)]
        found.sort(key=lambda entry: (-entry.priority, entry.insertion_order))
        kept: list[LoreEntry] = []
        spent = 0
        for entry in found:
            cost = count_tokens(entry.content)
            if spent + cost > self.token_budget:
                continue
            spent += cost
            kept.append(entry)
        kept.sort(key=lambda entry: entry.insertion_order)
        return tuple(kept)
