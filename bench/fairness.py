"""Row 4: one channel floods the bot, then another asks once. How long does it wait?

Both schedulers run the same jobs on the same batched engine: cabot's ``InferenceQueue``
(round-robin across channels, one running job per channel, so a flood holds one
sequence and the late request finds a free one) and a plain first-in first-out queue
with the same number of jobs running at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from bench.common import BenchConfig, RecordingBackend, Row, median
from bench.streams import batched
from bot.backends.base import ChatMessage, GenerationRequest
from bot.queue import InferenceQueue, JobEvent

FLOOD = 20
PARALLEL = 4


def request(text: str, channel: str) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("system", "You are a helpful assistant."),
                  ChatMessage("user", text)),
        temperature=0.0, max_tokens=24, session=channel,
    )


FLOODED = [request(f"Say something about the number {i}.", "flood") for i in range(FLOOD)]
LATE = request("Say something about the moon.", "late")


async def round_robin(backend: RecordingBackend) -> float:
    """Seconds the late channel's job waits to start under cabot's queue."""
    queue = InferenceQueue(backend, max_pending=1024, max_per_channel=1024,
                           user_rate=1_000_000)
    await queue.start()
    flowing = asyncio.Event()
    try:
        jobs = [queue.submit(r, "flood", "flooder") for r in FLOODED]
        draining = [asyncio.create_task(drain(job.events(), flowing)) for job in jobs]
        await flowing.wait()  # the flood is generating when the late request arrives
        submitted = time.perf_counter()
        late = queue.submit(LATE, "late", "someone")
        await asyncio.gather(*draining, drain(late.events(), asyncio.Event()))
    finally:
        await queue.stop()
    return started_at(backend, LATE) - submitted


async def fifo(backend: RecordingBackend) -> float:
    """Seconds the late channel's job waits to start in a plain FIFO queue."""
    slots = asyncio.Semaphore(PARALLEL)  # asyncio's semaphore serves waiters in order
    flowing = asyncio.Event()

    async def run(r: GenerationRequest) -> None:
        async with slots:
            async for _ in backend.generate(r):
                flowing.set()

    tasks = [asyncio.create_task(run(r)) for r in FLOODED]
    await flowing.wait()
    submitted = time.perf_counter()
    tasks.append(asyncio.create_task(run(LATE)))
    await asyncio.gather(*tasks)
    return started_at(backend, LATE) - submitted


async def drain(events: AsyncIterator[JobEvent], flowing: asyncio.Event) -> None:
    async for event in events:
        if event.kind == "text":
            flowing.set()


def started_at(backend: RecordingBackend, wanted: GenerationRequest) -> float:
    return next(start for r, start, _ in reversed(backend.spans) if r is wanted)


def job_length(backend: RecordingBackend) -> float:
    """How long a flood job took, start to end (median of the first few)."""
    first = sorted((start, end) for r, start, end in backend.spans if r.session == "flood")
    return median([end - start for start, end in first[:PARALLEL]])


async def fairness(config: BenchConfig) -> Row:
    backend = RecordingBackend(batched(config, parallel=PARALLEL, n_ctx=512, resident=PARALLEL))
    await backend.start()
    ours: list[float] = []
    plain: list[float] = []
    lengths: list[float] = []
    try:
        schedulers: tuple[tuple[list[float], Callable[[RecordingBackend], Awaitable[float]]],
                          ...] = ((ours, round_robin), (plain, fifo))
        for _ in range(config.repeats):
            for results, scheduler in schedulers:
                backend.spans.clear()
                results.append(await scheduler(backend))
                lengths.append(job_length(backend))
    finally:
        await backend.stop()
    wait, length = median(ours), median(lengths)
    return Row(
        4, f"Fairness: wait of one request after another channel's {FLOOD}",
        "s", wait, median(plain), f"plain FIFO queue, {PARALLEL} jobs at once",
        f"≤ one job ({length:.2f} s)", wait <= length,
        details={"ours_runs": ours, "fifo_runs": plain, "job_length_s": length},
    )
