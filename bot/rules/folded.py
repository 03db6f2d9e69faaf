"""Folded text with a map back to the original characters (see ``bot.rules.folding``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Folded:
    """Folded text and, for each of its characters, the original span it stands for."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    leet: bool = False
    """Whether digits were read as letters (numbers are not themselves in this reading)."""

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The original span of folded characters ``start:end`` (``start < end``)."""
        return self.starts[start], self.ends[end - 1]

    def original_start(self, start: int, length: int) -> int:
        """Where folded position ``start`` begins in the original (``length`` at the end)."""
        return self.starts[start] if start < len(self.text) else length
