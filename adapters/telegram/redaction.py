"""Keeping the Telegram token out of every log line.

The token is part of every Bot API URL. httpx logs each request URL at INFO, and
python-telegram-bot logs its API URL at DEBUG when a bot is built, so lowering httpx
alone (as the entry point does) is not enough at ``CABOT_LOG_LEVEL=DEBUG``. While the
adapter runs, the HTTP loggers are held at WARNING and the token is redacted by a filter
on the log *handlers*: every record reaches a handler whichever logger made it, so a
logger created after the adapter started (by a library imported later, say) is covered
too. Handlers are the root logger's and those of any logger that has its own; the entry
point installs its handler before any adapter starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

REDACTED = "<telegram-token>"
QUIET = ("httpx", "httpcore")
"""Loggers whose INFO/DEBUG lines are request URLs: held at WARNING."""


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
            # The record itself changes, so handlers after this one print no token either.
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def log_handlers() -> list[logging.Handler]:
    """Every handler now installed: the root logger's, any other logger's, and the last
    resort (what prints warnings when logging was never configured)."""
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    found: dict[int, logging.Handler] = {}
    if logging.lastResort is not None:
        found[id(logging.lastResort)] = logging.lastResort
    for logger in loggers:
        for handler in logger.handlers:
            found.setdefault(id(handler), handler)
    return list(found.values())


def guard_token(token: str) -> Callable[[], None]:
    """Redact ``token`` from logs and quiet the HTTP loggers; returns the undo function."""
    redactor = TokenRedactor(token)
    handlers = log_handlers()
    for handler in handlers:
        handler.addFilter(redactor)
    levels: dict[str, int] = {}
    for name in QUIET:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            levels[name] = logger.level
            logger.setLevel(logging.WARNING)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(redactor)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    return undo
