"""The event loop never stalls: its lag while the real engine generates for 8 channels.

Eight channels ask at once; while their replies stream, a probe sleeps 10 ms at a time on
the loop and records how late each wake-up is, and a moderator's command is sent in a
ninth channel. What a Discord heartbeat or a command would feel is the worst lag.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bot.app import App
from bot.backends.batched import BatchedBackend
from tests.helpers.apps import make_settings
from tests.helpers.recording import RecordingAdapter, message

CHANNELS = 8
PROBE = 0.01


@dataclass
class LagResult:
    max_lag_ms: float
    p99_lag_ms: float
    command_answered_s: float
    replies: int
    batch_s: float


async def measure_lag(model: Path, workdir: Path, n_threads: int = 2) -> LagResult:
    settings = make_settings(workdir, parallel=CHANNELS, n_threads=n_threads,
                             reply_tokens=128)
    app = App(settings, backend=BatchedBackend(model, parallel=CHANNELS, n_threads=n_threads))
    chat = RecordingAdapter()
    await app.start([chat])
    lags: list[float] = []
    busy = True

    async def probe() -> None:
        while busy:
            before = time.perf_counter()
            await asyncio.sleep(PROBE)
            lags.append(time.perf_counter() - before - PROBE)

    try:
        prober = asyncio.create_task(probe())
        started = time.perf_counter()
        replies = [asyncio.create_task(app.router.handle(chat, message(
            "Tell me a long story about the sea.", channel=f"busy-{n}", author=f"u{n}")))
            for n in range(CHANNELS)]
        await asyncio.sleep(0.5)  # the batch is generating
        asked = time.perf_counter()
        await app.router.handle(chat, message("/profile show", channel="mods",
                                              author="mod", moderator=True))
        answered = time.perf_counter() - asked
        await asyncio.gather(*replies)
        batch = time.perf_counter() - started
        busy = False
        await prober
    finally:
        await app.stop()
    ordered = sorted(lags)
    return LagResult(
        max_lag_ms=ordered[-1] * 1000 if ordered else 0.0,
        p99_lag_ms=ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0,
        command_answered_s=answered, replies=len(chat.shown) - 1, batch_s=batch,
    )
