"""The error tree of cabot.

Every error cabot raises on purpose derives from ``CabotError``; ``str(error)`` is a
sentence a moderator understands, naming what was wrong and what to do. Adapters
translate SDK exceptions into ``AdapterError`` at their boundary. A generation's errors
cross from the engines' worker threads as these types (``bot.backends.bridge``): tell
them apart with ``isinstance``, never by their text.

    CabotError                      (profiles.errors; root)
    ├── ProfileError                (profiles.errors)
    │   ├── LayerFileError          malformed layer or profile file
    │   ├── CompositionError        conflicting, duplicate or missing layers
    │   ├── UnknownNameError        unknown profile or layer, with suggestions
    │   └── PackageError            a layer package or character card cannot be imported
    ├── ConfigError                 settings that cannot work (e.g. no model file)
    ├── StoreError                  the SQLite store cannot be opened or written
    │   ├── SchemaTooNewError       the database was written by a newer cabot
    │   └── StoreBusyError          another program holds the database's write lock
    ├── PermissionDeniedError       a non-moderator tried a moderator command
    │   └── BoundLayerError         a change the operator's floor or a community lock forbids
    ├── CommandError                a command with bad arguments
    ├── InferenceError              a generation failed
    │   ├── ContextOverflowError    the prompt does not fit the model's context window
    │   ├── DecodeFailedError       llama.cpp could not evaluate a batch (llama_decode's code)
    │   ├── QueueFullError          too many waiting jobs (globally or in a channel)
    │   ├── RateLimitedError        one user sent too many requests
    │   ├── JobTimeoutError         a job ran past its wall-clock limit
    │   ├── JobCancelledError       a job was cancelled
    │   └── RemoteServerError       an inference server failed, or answered what cabot can't read
    │       ├── ServerUnavailableError  no inference server of the pool can take the job
    │       └── RemoteAuthError     an inference server refused cabot's API key
    └── AdapterError                a chat platform refused a request
        ├── ForbiddenError          no permission to post in that place
        ├── MessageGoneError        the message to edit no longer exists
        └── PlatformRateLimitError  the platform asked to wait longer than allowed
"""

from __future__ import annotations

from profiles.errors import (
    CabotError,
    CompositionError,
    LayerFileError,
    PackageError,
    ProfileError,
    UnknownNameError,
)

__all__ = [
    "AdapterError",
    "BoundLayerError",
    "CabotError",
    "CommandError",
    "CompositionError",
    "ConfigError",
    "ContextOverflowError",
    "DecodeFailedError",
    "ForbiddenError",
    "InferenceError",
    "JobCancelledError",
    "JobTimeoutError",
    "LayerFileError",
    "MessageGoneError",
    "PackageError",
    "PermissionDeniedError",
    "PlatformRateLimitError",
    "ProfileError",
    "QueueFullError",
    "RateLimitedError",
    "RemoteAuthError",
    "RemoteServerError",
    "SchemaTooNewError",
    "ServerUnavailableError",
    "StoreBusyError",
    "StoreError",
    "UnknownNameError",
]


class ConfigError(CabotError):
    """Settings that cannot work."""


class StoreError(CabotError):
    """The SQLite store cannot be opened or written."""


class SchemaTooNewError(StoreError):
    """The database was written by a newer version of cabot."""


class StoreBusyError(StoreError):
    """Another program held the database's write lock for longer than cabot waits."""


class PermissionDeniedError(CabotError):
    """A non-moderator tried a moderator command."""


class BoundLayerError(PermissionDeniedError):
    """A stack that would drop or clash with a floor or locked layer; says who can lift it."""


class CommandError(CabotError):
    """A command with missing or bad arguments."""


class InferenceError(CabotError):
    """A generation failed."""


class ContextOverflowError(InferenceError):
    """The prompt does not fit the model's context window."""


class DecodeFailedError(InferenceError):
    """llama.cpp could not evaluate a batch of tokens.

    Args:
        code: what ``llama_decode`` returned (1: no room left in the KV cache).
        doing: what the model was doing, for the sentence ("generating", "reading the
            prompt").
    """

    def __init__(self, code: int, doing: str = "generating") -> None:
        super().__init__(f"The model failed while {doing} (llama_decode returned {code}).")
        self.code = code


class QueueFullError(InferenceError):
    """Too many jobs are waiting."""


class RateLimitedError(InferenceError):
    """One user sent too many requests in a short time."""


class JobTimeoutError(InferenceError):
    """A job ran past its wall-clock limit."""


class JobCancelledError(InferenceError):
    """A job was cancelled before it finished."""


class RemoteServerError(InferenceError):
    """An inference server failed mid-reply, or answered something cabot cannot read."""


class ServerUnavailableError(RemoteServerError):
    """No inference server of the pool is answering, or every one is too busy."""


class RemoteAuthError(RemoteServerError):
    """An inference server refused cabot's API key (the key itself is never in the text)."""


class AdapterError(CabotError):
    """A chat platform refused a request."""


class ForbiddenError(AdapterError):
    """No permission to post in that place."""


class MessageGoneError(AdapterError):
    """The message to edit no longer exists."""


class PlatformRateLimitError(AdapterError):
    """The platform asked to wait longer than cabot is willing to."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
