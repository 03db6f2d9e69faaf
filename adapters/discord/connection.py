"""The gateway connection as an operator sees it: one warning per outage, one line back.

discord.py keeps the connection by itself. A connection that drops, goes quiet past the
heartbeat timeout or is closed with a code that allows it is resumed at once (the events
missed meanwhile are replayed); a session Discord no longer knows (INVALID_SESSION after
close codes 4007, 4009) is identified anew; a gateway that cannot be reached is retried
with exponential backoff. Close codes that make retrying pointless (4004 authentication
failed, 4010-4014) end the client: ``ended_message`` says what to do.

discord.py logs those retries at ERROR with a traceback each, and a quiet connection at
WARNING, while most reconnects only at DEBUG. ``GatewayWatch`` takes those lines over
while the adapter runs (``ReconnectLogFilter`` on discord.py's loggers) and logs instead
"Discord gateway connection lost (reason); reconnecting" once when an outage starts and
"Discord gateway back after N s" once when it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import discord
from discord.gateway import DiscordWebSocket

log = logging.getLogger(__name__)

CLOSE_CODES = {
    1000: "closed", 1001: "going away",
    1006: "abnormal closure: dropped, or silent past the heartbeat timeout",
    1011: "server error", 4000: "unknown error", 4001: "unknown opcode",
    4002: "decode error", 4003: "not authenticated", 4005: "already authenticated",
    4007: "invalid seq", 4008: "rate limited", 4009: "session timed out",
}
FATAL_CLOSE_CODES = {
    4004: "authentication failed", 4010: "invalid shard", 4011: "sharding required",
    4012: "invalid API version", 4013: "invalid intents", 4014: "disallowed intents",
}
"""Close codes discord.py does not reconnect after (nor should it)."""
FILTERED_LOGGERS = ("discord.client", "discord.shard", "discord.gateway")
RETRY_LINES = ("Attempting a reconnect",)
"""discord.client / discord.shard, one per failed attempt (ERROR, with a traceback)."""
QUIET_LINES = ("Shard ID %s has stopped responding to the gateway",)
"""discord.gateway's keep-alive thread when heartbeats go unanswered (WARNING)."""


def close_reason(ws: DiscordWebSocket | None) -> tuple[int | None, str]:
    """The close code of ``ws`` (None if unknown) and a few words on why it closed."""
    if ws is None or ws.socket is None:
        return None, "connection closed"
    # discord.py's own close code (set when it closed the socket itself) is private; it is
    # read only to tell "discord.py closed it" from "Discord closed it".
    own: int | None = getattr(ws, "_close_code", None)
    code = ws.socket.close_code
    if own is not None:
        return own, "Discord asked to reconnect"
    if code is None:
        return None, "connection closed"
    words = FATAL_CLOSE_CODES.get(code) or CLOSE_CODES.get(code, "closed")
    return code, f"{code} {words}"


def ended_message(error: BaseException) -> str:
    """What to tell the operator when the client stopped for good after being connected."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return ("Discord closed the gateway: the Message Content intent is no longer "
                "allowed (4014). cabot is off Discord; switch it on in the developer portal "
                "(Bot -> Privileged Gateway Intents) and restart cabot.")
    if isinstance(error, discord.ConnectionClosed) and error.code == 4004:
        return ("Discord closed the gateway: authentication failed (4004), the bot token "
                "was reset or revoked. cabot is off Discord and will not retry; put the new "
                "token in CABOT_DISCORD_TOKEN and restart cabot.")
    if isinstance(error, discord.ConnectionClosed) and error.code in FATAL_CLOSE_CODES:
        return (f"Discord closed the gateway: {FATAL_CLOSE_CODES[error.code]} "
                f"({error.code}). cabot is off Discord and will not retry; check the "
                "CABOT_DISCORD_* settings and restart cabot.")
    return (f"The Discord connection ended ({type(error).__name__}: {error}); cabot is off "
            "Discord until it is restarted.")


class GatewayWatch:
    """Tells outages of the gateway connection apart from retries, and logs each once.

    Args:
        clock: monotonic seconds, for how long an outage lasted.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._running = False
        self._online = False
        self._lost_at: float | None = None
        self._hint: str | None = None
        self.outages = 0
        """Outages since the adapter started."""
        self.last_failure: str | None = None
        """The latest reason a connection attempt failed (for start-up errors)."""
        self._filter = ReconnectLogFilter(self)

    def start(self) -> None:
        """Take over discord.py's reconnect lines (until ``stop``)."""
        self._running, self._online, self._lost_at = True, False, None
        self._hint = self.last_failure = None
        for name in FILTERED_LOGGERS:
            logging.getLogger(name).addFilter(self._filter)

    def stop(self) -> None:
        """The adapter is disconnecting on purpose: nothing it sees now is an outage."""
        self._running = False
        for name in FILTERED_LOGGERS:
            logging.getLogger(name).removeFilter(self._filter)

    @property
    def online(self) -> bool:
        return self._online

    def hint(self, reason: str) -> None:
        """Why the connection failed, as discord.py logged it (from any thread)."""
        self._hint = reason
        self.last_failure = reason

    def connected(self, how: str) -> None:
        """READY (a new session) or RESUMED arrived: the gateway is back if it was away."""
        self._hint = None
        if not self._running:
            return
        self._online = True
        lost_at, self._lost_at = self._lost_at, None
        if lost_at is not None:
            log.info("Discord gateway back after %.1f s (%s)", self._clock() - lost_at, how)

    def disconnected(self, ws: DiscordWebSocket | None) -> None:
        """discord.py dropped its connection (it reconnects unless the code is fatal)."""
        code, words = close_reason(ws)
        hint, self._hint = self._hint, None
        if not self._running or not self._online or code in FATAL_CLOSE_CODES:
            return
        self._online = False
        self._lost_at = self._clock()
        self.outages += 1
        log.warning("Discord gateway connection lost (%s); reconnecting", hint or words)


class ReconnectLogFilter(logging.Filter):
    """Drops discord.py's per-retry lines, handing their reason to the watch instead."""

    def __init__(self, watch: GatewayWatch) -> None:
        super().__init__()
        self._watch = watch

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith(RETRY_LINES):
            self._watch.hint(_describe(record.exc_info))
            return False
        if message.startswith(QUIET_LINES):
            self._watch.hint("no answer to heartbeats")
            return False
        return True


def _describe(exc_info: Any) -> str:
    error = exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None
    if not isinstance(error, BaseException):
        return "connection failed"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
