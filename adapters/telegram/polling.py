"""Long polling as an operator sees it: one warning per outage, one line when it is back.

python-telegram-bot's updater calls getUpdates in a retry loop. After a network error or a
5xx answer it waits and tries again (1 s, then 1.5 times longer each time up to 30 s; with
a poll interval set, 1.5 times that interval to start with), logging each failure with
a traceback unless it is given an error callback; a poll that times out is retried at once
and logged only at DEBUG. Updates are confirmed by the next poll's offset, so nothing
posted during an outage is lost: it comes with the first poll that succeeds.

``PollWatch`` is that error callback, and ``WatchedPollRequest`` (the getUpdates
connection) tells it about every answer and every timeout, so the log says
"Telegram long polling failed (reason); retrying" once when an outage starts and
"Telegram long polling back after N s" once when a poll succeeds again.

A token revoked or replaced in @BotFather makes every poll answer 401: the updater stops
polling for good, with a traceback. The watch says instead, once, what happened and what
to do (`PollWatch.rejected`), and `InvalidTokenLogFilter` drops the traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from telegram.error import RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

GET_UPDATES_POOL = 1
"""Connections for getUpdates: one poll at a time (python-telegram-bot's default)."""


class PollWatch:
    """Tells outages of the long poll apart from its retries, and logs each once.

    Args:
        clock: monotonic seconds, for how long an outage lasted.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at: float | None = None
        self._failures = 0
        self.outages = 0
        """Outages since the adapter started."""
        self.token_rejected = False
        """The Bot API refused the token while polling: nothing more is received."""

    @property
    def failing(self) -> bool:
        return self._failed_at is not None

    def failed(self, error: TelegramError) -> None:
        """A poll failed: the updater's error callback (and timeouts, which skip it)."""
        if isinstance(error, RetryAfter):
            return  # a flood wait the updater sits out: not an outage
        self._failures += 1
        if self._failed_at is not None:
            return
        self._failed_at = self._clock()
        self.outages += 1
        log.warning("Telegram long polling failed (%s); retrying", describe(error))

    def rejected(self) -> None:
        """A poll was answered 401: the token no longer works, and polling ends."""
        if self.token_rejected:
            return
        self.token_rejected = True
        log.error("Telegram rejected the bot token while polling (401 Unauthorized): it was "
                  "revoked or replaced in @BotFather, so nothing more is received from "
                  "Telegram. Put the new token in CABOT_TELEGRAM_TOKEN and restart cabot.")

    def succeeded(self) -> None:
        """A poll was answered: the Bot API is back if it was away."""
        failed_at, self._failed_at = self._failed_at, None
        if failed_at is None:
            return
        failures, self._failures = self._failures, 0
        log.info("Telegram long polling back after %.1f s (%d failed polls)",
                 self._clock() - failed_at, failures)


def describe(error: TelegramError) -> str:
    """The error in a few words: a proxy's HTML error page is left out."""
    text = str(error).split(". Parsing the server response", 1)[0]
    return f"{type(error).__name__}: {text}"


class WatchedPollRequest(HTTPXRequest):
    """The getUpdates connection, telling ``watch`` how each poll went."""

    def __init__(self, watch: PollWatch) -> None:
        super().__init__(connection_pool_size=GET_UPDATES_POOL)
        self._watch = watch

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, payload = await super().do_request(*args, **kwargs)
        except TimedOut as error:
            # The updater retries a timeout at once without calling its error callback.
            self._watch.failed(error)
            raise
        if HTTPStatus.OK <= code < HTTPStatus.MULTIPLE_CHOICES:
            self._watch.succeeded()
        elif code == HTTPStatus.UNAUTHORIZED:
            self._watch.rejected()
        return code, payload

    @staticmethod
    def parse_json_payload(payload: bytes) -> dict[str, Any]:
        # python-telegram-bot logs an ERROR with the whole body for each answer that is not
        # JSON, e.g. a proxy's "502 Bad Gateway" page at every failed poll of an outage. The
        # error itself still reaches the watch, which logs it once.
        try:
            parsed: dict[str, Any] = json.loads(payload.decode("utf-8", "replace"))
        except ValueError as error:
            raise TelegramError("Invalid server response") from error
        return parsed


UPDATER_LOGGER = "telegram.ext"
"""Where python-telegram-bot's retry loop logs (``telegram.ext._utils.networkloop``)."""


class InvalidTokenLogFilter(logging.Filter):
    """Drops the updater's traceback for a rejected token once the watch has said it."""

    def __init__(self, watch: PollWatch) -> None:
        super().__init__()
        self._watch = watch

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not (self._watch.token_rejected and "Invalid token" in message)
