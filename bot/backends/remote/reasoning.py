"""Reasoning models think aloud; users never see it and memory never keeps it.

A server either sends the thinking apart (``reasoning_content`` or ``reasoning`` deltas,
which cabot ignores) or inline, as ``<think>…</think>`` in the text, which
``ThinkingFilter`` removes from a stream of pieces, whatever way the tags are split
across them. While the model thinks nothing is emitted, so the reply path keeps the
typing indicator on until the first visible text.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkingFilter:
    """Drops ``<think>…</think>`` spans from streamed text."""

    def __init__(self) -> None:
        self._pending = ""
        self._thinking = False
        self._started = False

    @property
    def thinking(self) -> bool:
        """Whether the model is inside a thinking span right now."""
        return self._thinking

    def feed(self, piece: str) -> str:
        """The visible text ``piece`` adds (text that may start a tag is held back)."""
        text = self._pending + piece
        self._pending = ""
        out: list[str] = []
        while text:
            tag = CLOSE if self._thinking else OPEN
            at = text.find(tag)
            if at >= 0:
                if not self._thinking:
                    out.append(text[:at])
                text = text[at + len(tag):]
                self._thinking = not self._thinking
                continue
            keep = _partial_tag(text, tag)
            if not self._thinking:
                out.append(text[: len(text) - keep])
            self._pending = text[len(text) - keep:]
            break
        visible = "".join(out)
        if not self._started:
            # The answer usually follows the thought after a blank line: not worth showing.
            visible = visible.lstrip()
            self._started = bool(visible)
        return visible

    def flush(self) -> str:
        """What is held back at the end of the stream (nothing of an unclosed thought)."""
        pending, self._pending = self._pending, ""
        return "" if self._thinking else pending


def _partial_tag(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that begins ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
