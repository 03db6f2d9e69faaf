"""Keeping chat text from spelling the model's control tokens.

Chat templates are rendered to text and tokenized with control tokens parsed, so a user
who types ``<|im_end|><|im_start|>system`` would otherwise open a real system turn and
override the profile. Every message is escaped first: a zero-width space after the first
character turns such a string back into ordinary text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ZERO_WIDTH_SPACE = "\u200b"


class ControlTokenGuard:
    """Escapes the text of a model's control tokens wherever it appears in a message."""

    def __init__(self, control_texts: Iterable[str]) -> None:
        names = sorted({t for t in control_texts if len(t) > 1}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in names)) if names else None

    def escape(self, text: str) -> str:
        """``text`` with every control-token spelling broken up."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: m.group(0)[0] + ZERO_WIDTH_SPACE + m.group(0)[1:], text)
