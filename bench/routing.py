"""Row 6: messages per second through the router with a backend that costs nothing.

Every message takes the full path a chat message takes: the router, profile resolution,
conversation memory read from and written to the SQLite store, prompt fitting, the
inference queue and the streamed reply to the console adapter; only the model is
replaced. Thirty channels talk at once, each sending its next message when the reply to
the last one is in.
"""

from __future__ import annotations

import asyncio
import io
import time

from adapters.console import ConsoleAdapter
from bench.common import BenchConfig, NoopBackend, Row, bench_app
from bot.app import App
from bot.messages import IncomingMessage, Scope

MESSAGES = 3000
CHANNELS = 30
TARGET = 2000.0


def message(channel: int, index: int, repeat: int) -> IncomingMessage:
    return IncomingMessage(
        scope=Scope(platform="console", community="bench", channel=f"route-{channel}"),
        message_id=f"{repeat}-{channel}-{index}", author_id=f"user-{channel}",
        author_name=f"user {channel}", text=f"Message {index} of round {repeat}: hello there.",
        is_direct=True,
    )


async def talk(app: App, console: ConsoleAdapter, channel: int, repeat: int) -> None:
    """One channel's conversation: each message is sent once the reply to the last is in."""
    for index in range(MESSAGES // CHANNELS):
        await app.router.handle(console, message(channel, index, repeat))


async def routing(config: BenchConfig) -> Row:
    app = bench_app(config, "routing", NoopBackend(), max_tokens=64)
    console = ConsoleAdapter(io.StringIO())
    await app.start([console])
    rates: list[float] = []
    try:
        for repeat in range(config.repeats + 1):  # the first round warms the caches
            start = time.perf_counter()
            await asyncio.gather(*(talk(app, console, c, repeat) for c in range(CHANNELS)))
            if repeat:
                rates.append(MESSAGES / (time.perf_counter() - start))
    finally:
        await app.stop()
    rates.sort()
    rate = rates[len(rates) // 2]
    return Row(
        6, "Routing: messages/s through router, profiles and store (no-op model)",
        "msg/s", rate, TARGET, "target", f"≥ {TARGET:.0f}/s", rate >= TARGET,
        details={"runs": rates, "messages": MESSAGES, "channels": CHANNELS},
    )
