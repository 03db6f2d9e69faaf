"""Turning generated token bytes into streamed text, cut at the first stop sequence."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopTextStream:
    """Decodes token pieces incrementally and ends the text at a stop sequence.

    Text that could be the start of a stop sequence is held back until it is clearly not
    one, so a stop sequence is never shown, not even in part. Bytes of a character split
    across tokens wait for the rest of the character. With ``strip_leading`` the
    whitespace before the first visible character is never released (the space after a
    transcript's ``Assistant:``); stop sequences are still found in it.
    """

    def __init__(self, stop: Sequence[str] = (), *, strip_leading: bool = False) -> None:
        self._strip_leading = strip_leading
        self._stop = [s for s in stop if s]
        self._longest = max((len(s) for s in self._stop), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._text = ""
        self._emitted = 0
        self.stopped = False

    @property
    def text(self) -> str:
        """Everything released so far."""
        return self._text[: self._emitted]

    def feed(self, piece: bytes) -> str:
        """Add one token's bytes; returns the text now safe to release ("" if none)."""
        if self.stopped:
            return ""
        self._text += self._decoder.decode(piece)
        if not self._stop:
            return self._release(len(self._text))
        # Only a match that ends in the new text can be new: search from where it could start.
        start = max(0, self._emitted - self._longest)
        found = [i for s in self._stop if (i := self._text.find(s, start)) != -1]
        if found:
            self.stopped = True
            end = min(found)
            self._text = self._text[:end]
            return self._release(end)
        return self._release(len(self._text) - self._held_back())

    def finish(self) -> str:
        """The generation ended without a stop sequence: release what was held back."""
        if self.stopped:
            return ""
        self._text += self._decoder.decode(b"", final=True)
        return self._release(len(self._text))

    def _held_back(self) -> int:
        """Length of the longest end of the text that begins some stop sequence."""
        tail = self._text[-self._longest :] if self._longest else ""
        for size in range(min(len(tail), self._longest), 0, -1):
            end = tail[-size:]
            if any(s.startswith(end) for s in self._stop):
                return size
        return 0

    def _release(self, upto: int) -> str:
        if self._strip_leading and self._emitted == 0:
            start = len(self._text) - len(self._text.lstrip())
            if start >= upto:
                return ""
            # Everything before ``start`` counts as released: it is never shown.
            self._text = self._text[start:]
            upto -= start
        upto = max(upto, self._emitted)
        out = self._text[self._emitted : upto]
        self._emitted = upto
        return out
