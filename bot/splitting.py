"""Splitting a long reply into messages a platform accepts."""

from __future__ import annotations

import re
from collections.abc import Callable

FENCE = "```"
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s")
# A fence line: three or more backticks and an optional info string without backticks
# (so a one-line ```code``` is not a fence).
_FENCE_LINE = re.compile(r"^\s*`{3,}([^`]*)$")
MAX_LANGUAGE = 20


def open_fence(text: str) -> str | None:
    """The language of a code fence left open at the end of ``text``, else None.

    The language is the info string's first word, at most ``MAX_LANGUAGE`` characters
    (a longer one is dropped) so that reopening a block never costs much room.
    """
    language: str | None = None
    for line in text.split("\n"):
        match = _FENCE_LINE.match(line)
        if match is None:
            continue
        if language is None:
            words = match.group(1).split()
            language = words[0] if words and len(words[0]) <= MAX_LANGUAGE else ""
        else:
            language = None
    return language


def _boundary(window: str) -> int:
    """Where to cut ``window``: a paragraph, line, sentence or word end, else its end."""
    for separator, floor in (("\n\n", 0.4), ("\n", 0.4)):
        at = window.rfind(separator)
        if at > len(window) * floor:
            return at + len(separator)
    ends = [m.end() for m in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] > len(window) * 0.3:
        return ends[-1]
    at = window.rfind(" ")
    if at > len(window) * 0.3:
        return at + 1
    return len(window)


def _longest_prefix(text: str, room: int, measure: Callable[[str], int]) -> int:
    """The most characters of ``text`` whose measured length fits ``room`` (at least 1)."""
    if measure is len:
        return max(1, min(room, len(text)))
    low, high = 1, min(len(text), max(room, 1))
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def split_message(
    text: str, limit: int, measure: Callable[[str], int] = len
) -> list[str]:
    """Split ``text`` into chunks whose ``measure`` (characters by default) is at most ``limit``.

    Cuts prefer paragraph, then line, then sentence, then word boundaries. A code block
    cut by a split is closed at the end of one chunk and reopened (with its language)
    at the start of the next. No chunk is empty or whitespace only.
    """
    if limit < 32:
        raise ValueError("limit must be at least 32 characters")
    chunks: list[str] = []
    rest = text
    reopen = ""
    while rest:
        room = limit - measure(reopen)
        if measure(rest) <= room:
            chunk = reopen + rest
            if chunk.strip():
                chunks.append(chunk)
            break
        # Keep room for closing a code block this chunk may leave open.
        window = rest[: _longest_prefix(rest, room - len(FENCE) - 1, measure)]
        cut = _boundary(window)
        piece, rest = rest[:cut], rest[cut:]
        chunk = reopen + piece
        language = open_fence(chunk)
        if language is not None:
            chunk = chunk.rstrip("\n") + "\n" + FENCE
            reopen = f"{FENCE}{language}\n"
            rest = rest.lstrip("\n")
        else:
            reopen = ""
            rest = rest.lstrip()
        if chunk.strip() and chunk.strip() != FENCE:
            chunks.append(chunk.rstrip() if language is None else chunk)
    return chunks
