"""Text helpers of the remote backend: token estimates, stop sequences, failure sentences."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from bot.backends.remote.client import ServerFault
from bot.errors import RemoteServerError

log = logging.getLogger(__name__)

__all__ = ["_broke_off", "_cut_at_stops", "_unreadable", "estimate_tokens", "most_tokens"]


def most_tokens(text: str) -> int:
    """The most tokens ``text`` can take in a byte-level or byte-fallback tokenizer.

    Every token spells at least one byte (plus SentencePiece's leading space): never an
    under-count, whatever the text, but about four times too many for English prose.
    """
    return len(text.encode("utf-8")) + 1


def estimate_tokens(text: str) -> int:
    """A rough count of the tokens of ``text``, for servers without a tokenizer.

    English prose runs about four characters a token in the large vocabularies such
    servers use; digits are often one token each, and text outside ASCII can fall back
    to a token per one or two bytes. The server's usage numbers correct it upwards.
    """
    ascii_other = digits = wide = 0
    for char in text:
        if char.isascii():
            if char.isdigit():
                digits += 1
            else:
                ascii_other += 1
        else:
            wide += len(char.encode("utf-8"))
    return math.ceil(ascii_other / 3 + digits + wide / 2) + 1


def _cut_at_stops(text: str, stops: Sequence[str], *, final: bool = False
                  ) -> tuple[str, str, bool]:
    """(text to show, text held back as a possible stop's start, whether a stop was hit)."""
    at = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    if at >= 0:
        return text[:at], "", True
    if final:
        return text, "", False
    keep = max((size for s in stops for size in range(1, len(s))
                if text.endswith(s[:size])), default=0)
    return text[: len(text) - keep], text[len(text) - keep:], False


def _broke_off(fault: ServerFault) -> RemoteServerError:
    log.warning("a reply was cut short: %s", fault.detail)
    if fault.kind == "timeout":
        return RemoteServerError("The inference server stopped sending the reply; what you "
                                 "see is all it wrote. Try again.")
    if fault.kind == "malformed":
        return _unreadable(fault)
    return RemoteServerError("The inference server failed in the middle of the reply; what "
                             "you see is all it wrote. Try again.")


def _unreadable(fault: ServerFault) -> RemoteServerError:
    log.error("unreadable answer: %s", fault.detail)
    return RemoteServerError("The inference server sent a reply cabot could not read "
                             "(a malformed event stream); the operator should check "
                             "CABOT_REMOTE_KIND and the server's logs.")
