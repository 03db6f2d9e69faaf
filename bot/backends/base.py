"""The protocol every inference backend implements, and the job it runs."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Literal, Protocol, cast, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt."""

    role: str
    content: str


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a backend needs to generate one reply.

    ``banned`` phrases are turned into logit bias by the backend (it owns the tokenizer);
    ``logit_bias`` adds explicit token biases. ``session`` names the conversation (one
    per channel) so that a backend can keep its KV state resident between turns.
    """

    messages: tuple[ChatMessage, ...]
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    grammar: str | None = None
    seed: int | None = None
    session: str | None = None


SAMPLING_DEFAULTS: Mapping[str, float] = MappingProxyType({
    f.name: cast(float, f.default)
    for f in fields(GenerationRequest)
    if f.name in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")
})
"""The sampling values a reply uses where no layer sets them: ``GenerationRequest``'s own."""


SamplingRule = Literal["banned", "grammar", "stop", "max_tokens"]
"""A hard rule a backend can apply while it samples (the rest are cabot's filters)."""

LOCAL_SAMPLING: frozenset[SamplingRule] = frozenset({"banned", "grammar", "stop", "max_tokens"})
"""What the in-process llama.cpp engines enforce at sampling: every kind."""


@runtime_checkable
class ContextWindow(Protocol):
    """A backend whose model has a context window of its own, known once it has started
    (the local engines): prompts are fitted to it when it is smaller than CABOT_N_CTX."""

    @property
    def n_ctx(self) -> int:
        """Tokens one conversation may hold: its prompt and its reply."""


class Backend(Protocol):
    """Generates streamed text for requests.

    ``max_parallel`` is how many requests it can run at once (a batching engine
    runs several); the queue never gives it more, and reads it anew each time (a pool of
    servers has fewer slots while one is down). ``enforces`` names the hard rules it
    applies at sampling; cabot's stream and input filters hold every rule regardless.
    """

    name: str
    enforces: frozenset[SamplingRule]

    @property
    def max_parallel(self) -> int:
        """Requests it can run at once now."""

    async def start(self) -> None:
        """Load the model; returns when ready."""

    async def stop(self) -> None:
        """Release the model; running generations end."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this backend's model (for context budgeting)."""

    def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        """Stream the reply's text pieces. Closing the iterator cancels the generation.

        Raises:
            InferenceError: the generation failed (the backend stays usable).
        """
