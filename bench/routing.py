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
from collections.abc import Callable, Sequence
from pathlib import Path

import aiosqlite

from adapters.console import ConsoleAdapter
from bench.common import (
    BenchConfig,
    NoopBackend,
    Row,
    bench_app,
    bench_library,
    bench_settings,
    median,
)
from bot.app import App
from bot.messages import IncomingMessage, Scope
from bot.store import ConversationStore, Database, Store

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


async def store_round_trip(path: Path) -> float:
    """Seconds one trivial query takes through aiosqlite (a round trip to its thread)."""
    async with aiosqlite.connect(path) as db:
        start = time.perf_counter()
        for _ in range(1000):
            await db.execute("SELECT 1")
        return (time.perf_counter() - start) / 1000


class MemoryHistory(ConversationStore):
    """The real conversation store, except that memory stays in a dict."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._kept: dict[str, list[tuple[str, str]]] = {}

    async def append_exchange(
        self, scope: Scope, entries: Sequence[tuple[str, str]], keep: int
    ) -> None:
        kept = self._kept.setdefault(scope.key(), [])
        kept.extend(entries)
        del kept[: max(0, len(kept) - keep)]

    async def history(self, scope: Scope, limit: int) -> list[tuple[str, str]]:
        return self._kept.get(scope.key(), [])[-limit:] if limit else []


class MemoryHistoryStore(Store):
    """The real store, except that conversation memory stays in a dict.

    Only for the measurement that separates the router's own cost from SQLite's.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.conversations = MemoryHistory(self.database)


async def measure(
    app: App, repeats: int, trace: Callable[[str], None] | None = None
) -> list[float]:
    """Messages per second in each of ``repeats`` rounds (after one warm-up round).

    ``trace`` sees every SQL statement the store runs.
    """
    console = ConsoleAdapter(io.StringIO())
    await app.start([console])
    if trace is not None:
        await app.store.database.db.set_trace_callback(trace)
    rates: list[float] = []
    try:
        for repeat in range(repeats + 1):
            start = time.perf_counter()
            await asyncio.gather(*(talk(app, console, c, repeat) for c in range(CHANNELS)))
            if repeat:
                rates.append(MESSAGES / (time.perf_counter() - start))
    finally:
        await app.stop()
    return rates


async def routing(config: BenchConfig) -> Row:
    app = bench_app(config, "routing", NoopBackend(), max_tokens=64)
    statements = 0

    def count(_sql: str) -> None:
        nonlocal statements
        statements += 1

    rates = await measure(app, config.repeats, count)
    round_trip = await store_round_trip(config.workdir / "round-trip.db")
    # The same run with conversation memory in a dict: the router's cost without SQLite.
    settings = bench_settings(config, "routing-memory")
    without_sqlite = await measure(App(
        settings, backend=NoopBackend(), store=MemoryHistoryStore(settings.db),
        library=bench_library(config.workdir, 64),
    ), config.repeats)
    result = median(rates)
    return Row(
        6, "Routing: messages/s through router, profiles and store (no-op model)",
        "msg/s", result, TARGET, "target", f"≥ {TARGET:.0f}/s", result >= TARGET,
        details={"runs": rates, "messages": MESSAGES, "channels": CHANNELS,
                 "sql_statements_per_message": statements / ((config.repeats + 1) * MESSAGES),
                 "aiosqlite_round_trip_us": round_trip * 1e6,
                 "without_sqlite_history_msg_s": median(without_sqlite)},
    )
