"""What every benchmark row shares: the row record, the bot under test, machine facts."""

from __future__ import annotations

import asyncio
import functools
import os
import platform
import statistics
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bot.app import App
from bot.backends.base import LOCAL_SAMPLING, Backend, GenerationRequest
from bot.settings import Settings
from profiles import Library, load_builtin_library

BENCH_LAYER = """
name = "bench"
description = "Deterministic replies of a fixed length, so every run generates the same tokens."
version = "1"
[sampling]
temperature = 0.0
max_tokens = {max_tokens}
"""

BENCH_PROFILES = """
[profiles.bench]
description = "The default assistant with deterministic sampling."
layers = ["base", "helpful", "bench"]
"""


@dataclass
class Row:
    """One line of the table: our figure beside the baseline's, and the target."""

    number: int
    title: str
    unit: str
    ours: float
    baseline: float
    baseline_label: str
    target: str
    met: bool | None
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.ours / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Machine:
    """Where the figures were taken."""

    nproc: int
    cpu: str
    python: str
    load_before: tuple[float, float, float]

    @staticmethod
    def describe() -> Machine:
        return Machine(
            nproc=os.cpu_count() or 1,
            cpu=cpu_model(),
            python=platform.python_version(),
            load_before=os.getloadavg(),
        )


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


T = TypeVar("T")


async def own_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a new thread that ends with it (a baseline's llama.cpp
    call, off the event loop).

    llama.cpp's OpenMP runtime (libgomp) keeps a pool of worker threads for every thread
    that ran a computation, for as long as that thread lives. asyncio's executor keeps
    its threads, so a baseline run there leaves a pool behind; with more pooled threads
    than CPUs libgomp stops spinning at its barriers, and every later decode in the
    process, the engine under test included, ran 35-40% slower (row 15 after row 1: 0.6x
    instead of 1.0x; ``OMP_WAIT_POLICY=ACTIVE`` took it back). A thread that ends frees
    its pool.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cabot-bench-baseline")
    try:
        return await asyncio.get_running_loop().run_in_executor(
            pool, functools.partial(fn, *args, **kwargs))
    finally:
        await asyncio.to_thread(pool.shutdown)  # its pool is gone once its thread has ended


@dataclass(frozen=True)
class BenchConfig:
    """Knobs shared by the rows."""

    model: Path
    workdir: Path
    n_threads: int
    repeats: int = 3


def bench_library(workdir: Path, max_tokens: int) -> Library:
    """The built-in library plus the ``bench`` profile (greedy, ``max_tokens`` replies)."""
    layers = workdir / f"layers-{max_tokens}"
    layers.mkdir(parents=True, exist_ok=True)
    (layers / "bench.toml").write_text(BENCH_LAYER.format(max_tokens=max_tokens))
    (layers / "bench.profiles.toml").write_text(BENCH_PROFILES)
    return load_builtin_library(layers)


def bench_settings(config: BenchConfig, name: str, **overrides: Any) -> Settings:
    """Settings for a bot under test: its own database, no rate limits in the way."""
    values: dict[str, Any] = {
        "db": config.workdir / f"{name}.db",
        "default_profile": "bench",
        "user_rate": 1_000_000,
        "flood_messages": 1_000_000,
        "queue_max": 4096,
        "queue_per_channel": 256,
        "n_threads": config.n_threads,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def bench_app(
    config: BenchConfig, name: str, backend: Backend, *, max_tokens: int, **overrides: Any
) -> App:
    """An App on ``backend`` with the bench profile as everyone's default."""
    settings = bench_settings(config, name, **overrides)
    return App(settings, backend=backend, library=bench_library(config.workdir, max_tokens))


class RecordingBackend:
    """Wraps a backend and remembers each request it was given."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.enforces = inner.enforces
        self.requests: list[GenerationRequest] = []
        self.pieces = 0
        self.spans: list[tuple[GenerationRequest, float, float]] = []
        """Each finished generation: its request, when it started and when it ended."""

    @property
    def max_parallel(self) -> int:
        """The inner backend's, read anew each time (a remote pool's changes when probed)."""
        return self.inner.max_parallel

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        started = time.perf_counter()
        stream = self.inner.generate(request)
        try:
            async for piece in stream:
                self.pieces += 1
                yield piece
        finally:
            await stream.aclose()
            self.spans.append((request, started, time.perf_counter()))


class NoopBackend:
    """Answers instantly with one short piece: the router's own cost, without a model."""

    name = "no-op"

    def __init__(self, reply: str = "ok", max_parallel: int = 64) -> None:
        self.reply = reply
        self.max_parallel = max_parallel
        self.enforces = LOCAL_SAMPLING

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        yield self.reply


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


async def timed(action: Callable[[], Any]) -> float:
    """Seconds ``await action()`` took."""
    start = time.perf_counter()
    await action()
    return time.perf_counter() - start


async def settle() -> None:
    """Let callbacks scheduled by worker threads run."""
    await asyncio.sleep(0)
