"""Keeping chat text from spelling the model's control tokens.

Chat templates are rendered to text and tokenized with control tokens parsed, so a user
who types ``<|im_end|><|im_start|>system`` would otherwise open a real system turn and
override the profile. Every message is escaped first: a zero-width space after the first
character turns such a string back into ordinary text. Both engines build their guard
here, from their model's vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from bot.backends.base import ChatMessage

ZERO_WIDTH_SPACE = "\u200b"


class ControlTokenGuard:
    """Escapes the text of a model's control tokens wherever it appears in a message."""

    def __init__(self, control_texts: Iterable[str]) -> None:
        names = sorted({t for t in control_texts if len(t) > 1}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in names)) if names else None

    @classmethod
    def for_vocabulary(
        cls, texts: Sequence[str], spelling: Callable[[int], str]
    ) -> ControlTokenGuard:
        """The guard for a vocabulary whose control tokens generate no text.

        Args:
            texts: the generated text of every token id ("" for control tokens).
            spelling: how a token id is written in a chat template (``<|im_end|>``).
        """
        return cls(spelling(token) for token, text in enumerate(texts) if not text)

    def escape(self, text: str) -> str:
        """``text`` with every control-token spelling broken up."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)

    def chat_messages(self, messages: Iterable[ChatMessage]) -> list[dict[str, str]]:
        """``messages`` as a chat template's input, every content escaped."""
        return [{"role": m.role, "content": self.escape(m.content)} for m in messages]
