"""Keeping the Telegram token out of every log line.

The token is part of every Bot API URL. httpx logs each request URL at INFO, and
python-telegram-bot logs its API URL at DEBUG when a bot is built, so lowering httpx
alone (as the CLI does) is not enough at ``CABOT_LOG_LEVEL=DEBUG``. While the adapter
runs, the HTTP loggers are held at WARNING and every record of the libraries that see the
token, and of cabot itself, is redacted before any handler formats it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

REDACTED = "<telegram-token>"
QUIET = ("httpx", "httpcore")
"""Loggers whose INFO/DEBUG lines are request URLs: held at WARNING."""
GUARDED_PREFIXES = ("httpx", "httpcore", "telegram", "adapters", "bot", "asyncio")
"""Loggers (with their children) whose records are redacted."""


class TokenRedactor(logging.Filter):
    """Replaces the token (and its secret half) in a record's message and traceback."""

    def __init__(self, token: str) -> None:
        super().__init__()
        _, _, secret = token.partition(":")
        self._secrets = [token] + ([secret] if len(secret) >= 8 else [])

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def _guarded_loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    names = set(GUARDED_PREFIXES) | {
        name for name in manager.loggerDict
        if name.split(".", 1)[0] in GUARDED_PREFIXES
    }
    return [logging.getLogger(name) for name in sorted(names)]


def guard_token(token: str) -> Callable[[], None]:
    """Redact ``token`` from logs and quiet the HTTP loggers; returns the undo function."""
    redactor = TokenRedactor(token)
    loggers = _guarded_loggers()
    for logger in loggers:
        logger.addFilter(redactor)
    levels: dict[str, int] = {}
    for name in QUIET:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            levels[name] = logger.level
            logger.setLevel(logging.WARNING)

    def undo() -> None:
        for logger in loggers:
            logger.removeFilter(redactor)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    return undo
