"""Reasoning models think aloud; users never see it and memory never keeps it.

A server either sends the thinking apart (``reasoning_content`` or ``reasoning`` deltas,
which the remote backend ignores) or inline, as ``<think>…</think>`` in the text, which
``ThinkingFilter`` removes from a stream of pieces, whatever way the tags are split
across them; the reply path runs every backend's text through it, so a reasoning GGUF on
the local engines is covered too. Some chat templates open the thought in the prompt
itself, so the text starts inside it and only ``</think>`` appears: a closing tag before
any opening one means that everything before it was thought, and the filter says so
(``restarted``) so the reply shown so far is taken back. While the model thinks nothing
is emitted, so the reply path keeps the typing indicator on until the first visible text.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkingFilter:
    """Drops ``<think>…</think>`` spans from streamed text.

    Args:
        lone_close: whether a ``</think>`` before any ``<think>`` ends a thought the
            template opened (see ``restarted``); without it, such a tag stays in the text
            for a filter further along that can take back what was shown.
    """

    def __init__(self, lone_close: bool = True) -> None:
        self._lone_close = lone_close
        self._pending = ""
        self._thinking = False
        self._started = False
        self._tagged = not lone_close
        """A tag was seen (or lone tags are not looked for): ``</think>`` alone is text."""
        self._restarted = False

    @property
    def thinking(self) -> bool:
        """Whether the model is inside a thinking span right now."""
        return self._thinking

    def restarted(self) -> bool:
        """Whether the last ``feed`` found a ``</think>`` that no ``<think>`` opened: all
        text returned before that call was thought, and the caller drops it."""
        restarted, self._restarted = self._restarted, False
        return restarted

    def feed(self, piece: str) -> str:
        """The visible text ``piece`` adds (text that may start a tag is held back)."""
        text = self._pending + piece
        self._pending = ""
        out: list[str] = []
        while text:
            if not self._thinking and not self._tagged:
                lone = text.find(CLOSE)
                opened = text.find(OPEN)
                if lone >= 0 and (opened < 0 or lone < opened):
                    # The template opened the thought: everything so far was in it.
                    out.clear()
                    self._restarted = self._tagged = True
                    self._started = False
                    text = text[lone + len(CLOSE):]
                    continue
            tag = CLOSE if self._thinking else OPEN
            at = text.find(tag)
            if at >= 0:
                if not self._thinking:
                    out.append(text[:at])
                text = text[at + len(tag):]
                self._thinking = not self._thinking
                self._tagged = True
                continue
            keep = _partial_tag(text, tag)
            if not self._thinking and not self._tagged:
                keep = max(keep, _partial_tag(text, CLOSE))
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
