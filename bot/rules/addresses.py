"""The folding stage that reads spelled-out and defanged addresses as written.

``example dot com``, ``john [at] example [dot] com``, ``hxxps://`` and ``http[:]//`` become
``example.com``, ``john@example.com``, ``https://`` and ``http://`` on folded text, each
character still mapped to the original span it came from (``bot.rules.folding``).
"""

from __future__ import annotations

import re

from bot.rules.folded import Folded

ADDRESS_ENDINGS = "com|org|net|edu|gov|io|info|uk|de|fr|es|nl|ru|cn|jp|eu|ca|au|us|co"
"""Where a spelled `` dot `` is read as a dot: before one of these endings only, so "a red
dot in the middle" stays prose while "example dot com" is an address."""

PREPOSITION_WORDS = frozenset(
    "look looking looked me us him her them it here there home work school meet meeting "
    "click visit see stay arrive arrived arriving be is are was were get go went".split()
)
"""Words before `` at `` that make it a preposition, not an address's ``@``."""

_BRACKET_DOT = r"\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*"
_WORD_DOT = rf"\s+dot\s+(?=(?:{ADDRESS_ENDINGS})(?![a-z0-9]))"
_ADDRESS_SPELLINGS = re.compile(
    r"(?P<scheme>(?<![a-z0-9])h(?:tt|xx)p(?P<s>s?)\s*(?:\[\s*:\s*\]|\(\s*:\s*\)|:)\s*/\s*/)"
    rf"|(?P<dot>{_BRACKET_DOT}|(?<=[a-z0-9]){_WORD_DOT}|(?<=(?<![a-z0-9])www)\s+dot\s+)"
    r"|(?P<at>\s*[\[({<]\s*(?:at|@)\s*[\])}>]\s*"
    rf"|(?<=[a-z0-9])\s+at\s+(?=[a-z0-9-]+(?:\.[a-z0-9]|{_BRACKET_DOT}|{_WORD_DOT})))"
)


def addresses(folded: Folded) -> Folded:
    """Stage four: spelled and defanged addresses read as written (``example dot com``).

    ``[dot]``, ``(.)`` and the like are dots; `` dot `` is one before a common ending
    (``ADDRESS_ENDINGS``) or after ``www``; ``[at]`` is an ``@``, and so is `` at ``
    between a name (not ``PREPOSITION_WORDS``) and something with a dot; ``hxxps://``
    and ``http[:]//`` are ``https://`` and ``http://``.
    """
    text = folded.text
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    for match in _ADDRESS_SPELLINGS.finditer(text):
        if match.start() == match.end():
            continue
        if match.group("at") and "at" in match.group("at"):
            before = text[:match.start()].split()
            if before and before[-1] in PREPOSITION_WORDS:
                continue  # "look at example dot com": a place, not an address
        chars.extend(text[at:match.start()])
        starts.extend(folded.starts[at:match.start()])
        ends.extend(folded.ends[at:match.start()])
        if match.group("scheme"):
            written = f"http{match.group('s')}://"
        else:
            written = "." if match.group("dot") else "@"
        chars.extend(written)
        starts.extend([folded.starts[match.start()]] * len(written))
        ends.extend([folded.ends[match.end() - 1]] * len(written))
        at = match.end()
    if at == 0:
        return folded
    chars.extend(text[at:])
    starts.extend(folded.starts[at:])
    ends.extend(folded.ends[at:])
    return Folded("".join(chars), tuple(starts), tuple(ends))
