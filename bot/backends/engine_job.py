"""What the batched engine's worker knows of one generation, and the engine's counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bot.backends.base import GenerationRequest
from bot.backends.bridge import ThreadBridge
from bot.backends.sampling import SequenceSampler
from bot.backends.sessions import Slot
from bot.backends.text_stream import StopTextStream


@dataclass
class EngineStats:
    """Counters for tests and benchmarks (written by the worker only)."""

    steps: int = 0
    peak_batch: int = 0
    """The most sequences that generated in one decode call."""
    prompt_tokens: int = 0
    """Prompt tokens evaluated."""
    prompt_seconds: float = 0.0
    """Time spent in calls that read prompt tokens only."""
    generated_tokens: int = 0
    """Tokens evaluated in generation steps (one per generating sequence per step)."""
    generate_seconds: float = 0.0
    """Time spent in those steps' decode calls (those reading no prompt tokens)."""
    mixed_seconds: float = 0.0
    """Time spent in calls that advanced generating sequences and read newcomers' prompt
    chunks together (the shared KV cache); their tokens count in both counters above."""
    reused_tokens: int = 0
    """Prompt tokens whose resident KV was kept instead."""
    evictions: int = 0
    """Resident conversations whose KV was dropped for another's."""
    kv_waits: int = 0
    """Jobs that waited for a sequence or KV room to free up."""
    peak_kv_tokens: int = 0
    """The most KV cells the slot table counted at once (prompts, reply room, residents)."""
    copies: int = 0
    """Prefixes copied from another sequence instead of evaluated."""
    failures: int = 0


@dataclass(eq=False)
class EngineJob:
    """One generation as the worker sees it; its text and its end go out by ``events``."""

    request: GenerationRequest
    events: ThreadBridge
    serial: int = 0
    prompt: list[int] = field(default_factory=list)
    slot: Slot | None = None
    sampler: SequenceSampler | None = None
    evaluated: int = 0
    """Tokens of this sequence in the KV cache (prompt first, then generated ones)."""
    pending: int | None = None
    """A sampled token already shown, to be evaluated in the next step."""
    generated: int = 0
    max_new: int = 0
    text: StopTextStream = field(default_factory=StopTextStream)
    history: npt.NDArray[np.intc] = field(default_factory=lambda: np.zeros(0, dtype=np.intc))
    length: int = 0

    @property
    def cancelled(self) -> bool:
        """The consumer stopped reading (set from any thread); the worker drops the job."""
        return self.events.cancelled

    @property
    def prefilling(self) -> bool:
        return self.pending is None and self.evaluated < len(self.prompt)

    def seen(self) -> npt.NDArray[np.intc]:
        """Prompt and generated tokens so far (what a logits processor reads)."""
        return self.history[: self.length]

    def remember(self, token: int) -> None:
        self.history[self.length] = token
        self.length += 1
