"""Rows 6 and 9: messages per second through the router with a backend that costs nothing.

Every message takes the full path a chat message takes: the router, profile resolution,
conversation memory read from and written to the SQLite store, prompt fitting, the
inference queue and the streamed reply to the console adapter; only the model is
replaced.

Row 6: thirty channels talk at once, each sending its next message when the reply to
the last one is in, on an empty store.

Row 9: the same path as the number of places grows. Two stores, each pre-filled with a
binding, a summary and 20 to 40 remembered turns per channel (as the bot leaves memory
between two summaries): 30 channels in 1 community, and 30,000 channels in 10,000
communities (a bot in 10,000 servers). Thirty conversations spread
over all the channels, so at 30,000 nearly every message lands on a place no message
touched before in this process: its alignment and memory come from SQLite, not from a
cache. The two are measured in turns in one run.

Beside them, where the drop comes from: a copy of the 30,000-channel store whose bot read
every place's memory and alignment before the rounds (with room in RAM for all of it),
so no message is a place's first touch. What it costs above 30 channels is the larger
store itself (its writes land on more pages); the rest of the drop is first touches.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from bot.app import App, freeze_start_up_objects
from bot.messages import IncomingMessage, Scope
from bot.store import ConversationStore, Database, Store

MESSAGES = 3000
CHANNELS = 30
TARGET = 2000.0
NOT_FLOODING = {"flood_messages": 1_000_000}
"""Every bench user sends far more than a person would; the flood guard must not count."""

SMALL = (30, 1)
LARGE = (30_000, 10_000)
"""(channels, communities) of row 9's two stores."""
CONVERSATIONS = 30
REMEMBERED = 40
"""Turns a place remembers at most (CABOT_HISTORY_MESSAGES's default)."""
SCALE_TARGET = 1500.0
SCALE_DROP = 1.2
"""Row 9's targets: at least 1,500 msg/s at 30,000 channels, at most 1.2x below 30."""


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
        self, scope: Scope, entries: Sequence[tuple[str, str]], keep: int,
        authors: Sequence[str | None] = (),
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
    app: App, repeats: int, trace: Callable[[str], None] | None = None,
    cpu: list[float] | None = None,
) -> list[float]:
    """Messages per second in each of ``repeats`` rounds (after one warm-up round).

    ``trace`` sees every SQL statement the store runs; ``cpu`` gets the seconds of CPU
    the process spent in each measured round.
    """
    console = ConsoleAdapter(io.StringIO())
    await app.start([console])
    freeze_start_up_objects()  # as `cabot run` does
    if trace is not None:
        await app.store.database.db.set_trace_callback(trace)
    rates: list[float] = []
    try:
        for repeat in range(repeats + 1):
            start, used = time.perf_counter(), time.process_time()
            await asyncio.gather(*(talk(app, console, c, repeat) for c in range(CHANNELS)))
            if repeat:
                rates.append(MESSAGES / (time.perf_counter() - start))
                if cpu is not None:
                    cpu.append(time.process_time() - used)
    finally:
        await app.stop()
    return rates


async def routing(config: BenchConfig) -> list[Row]:
    """Rows 6 and 9."""
    return [await routing_row(config), await scale_row(config)]


class Statements:
    """Counts the SQL statements the store runs (as SQLite's trace callback)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _sql: str) -> None:
        self.count += 1


async def routing_row(config: BenchConfig) -> Row:
    app = bench_app(config, "routing", NoopBackend(), max_tokens=64, **NOT_FLOODING)
    counted = Statements()
    cpu: list[float] = []
    rates = await measure(app, config.repeats, counted, cpu)
    statements = counted.count
    round_trip = await store_round_trip(config.workdir / "round-trip.db")
    # The same run with conversation memory in a dict: the router's cost without SQLite.
    settings = bench_settings(config, "routing-memory", **NOT_FLOODING)
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
                 "cpu_us_per_message": 1e6 * median(cpu) / MESSAGES,
                 "aiosqlite_round_trip_us": round_trip * 1e6,
                 "without_sqlite_history_msg_s": median(without_sqlite)},
    )


# -- row 9: as the number of places grows --------------------------------------------


def place(channel: int, communities: int) -> Scope:
    """Channel ``channel`` of a row-9 store (channels go round the communities)."""
    return Scope(platform="console", community=f"community-{channel % communities}",
                 channel=f"channel-{channel}")


def fill(path: Path, channels: int, communities: int) -> None:
    """Give every channel a binding, a summary and its remembered turns, in bulk (blocking).

    Memory is left as the bot leaves it between two summaries: once a place remembers
    ``REMEMBERED`` turns its older half is folded into its summary, so places hold 20 to
    40 turns (30 on average) and a summary of the rest. The turns are written round the
    channels, as a busy bot writes them over time, so one channel's memory lies scattered
    over the table, not in one run of rows.
    """
    now = time.time()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        scopes = [place(channel, communities) for channel in range(channels)]
        db.executemany(
            "INSERT INTO bindings (platform, community, channel, thread, profile, set_by, "
            "set_at) VALUES (?, ?, ?, '', 'bench', 'bench', ?)",
            ((s.platform, s.community, s.channel, now) for s in scopes),
        )
        db.executemany(
            "INSERT INTO summaries (scope, text, turns, at) VALUES (?, ?, ?, ?)",
            ((s.key(), "They greeted each other and asked what the bot thinks of things.",
              20, now) for s in scopes),
        )
        ids = itertools.count(1)
        db.executemany(
            "INSERT INTO history (scope, id, role, content, at, author) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            ((scope.key(), next(ids), role, content, now, author)
             for index, (role, content, author) in enumerate(remembered())
             for channel, scope in enumerate(scopes) if index < kept(channel)),
        )
        db.execute("UPDATE history_ids SET next = ?", (next(ids),))
        db.execute("COMMIT")
        db.execute("ANALYZE")
    finally:
        db.close()


def kept(channel: int) -> int:
    """How many turns channel ``channel`` remembers: 20, 22, ... 40, round the channels."""
    half = REMEMBERED // 2
    return half + 2 * (channel % (half // 2 + 1))


def remembered() -> list[tuple[str, str, str | None]]:
    """Remembered turns, oldest first: earlier questions (with their author) and answers."""
    return [("user", f"Earlier message {index // 2}: what do you think of this?", "user-0")
            if index % 2 == 0 else ("assistant", "ok", None) for index in range(REMEMBERED)]


@dataclass
class Scale:
    """One of row 9's bots: its store's size, its app, and what was counted."""

    channels: int
    communities: int
    app: App
    console: ConsoleAdapter = field(default_factory=lambda: ConsoleAdapter(io.StringIO()))
    rates: list[float] = field(default_factory=list)
    statements: Statements = field(default_factory=Statements)
    round_trips: int = 0
    messages: int = 0
    cpu: float = 0.0
    """Seconds of CPU the process spent in the counted rounds (less load-dependent than
    the wall clock on a busy machine)."""
    warm: bool = False
    """Every place's memory and alignment is read before the rounds."""

    @property
    def label(self) -> str:
        places = "community" if self.communities == 1 else "communities"
        warm = ", every place read before the rounds" if self.warm else ""
        return f"{self.channels:,} channels in {self.communities:,} {places}{warm}"

    async def start(self) -> None:
        await self.app.start([self.console])
        if self.warm:
            for channel in range(self.channels):
                scope = place(channel, self.communities)
                await self.app.store.conversations.turns(scope, REMEMBERED)
                await self.app.resolver.resolve(scope)
        freeze_start_up_objects()  # as `cabot run` does
        db = self.app.store.database.db
        await db.set_trace_callback(self.statements)
        # aiosqlite sends every call to its thread through this one method: counting its
        # calls counts round trips.
        dispatch: Callable[..., Awaitable[Any]] = db._execute

        async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            return await dispatch(fn, *args, **kwargs)

        setattr(db, "_execute", counted)  # noqa: B010 (a method is not assignable for mypy)

    def reset_counts(self) -> None:
        self.statements.count = self.round_trips = self.messages = 0
        self.cpu = 0.0

    async def round(self, repeat: int) -> float:
        """One round of ``MESSAGES`` messages; returns messages per second."""
        per_conversation = MESSAGES // CONVERSATIONS
        slots = max(1, self.channels // CONVERSATIONS)

        async def converse(conversation: int) -> None:
            for index in range(per_conversation):
                # Each conversation walks its own share of the channels, so two never
                # talk in one channel at once and a big store is seen place by place.
                slot = (repeat * per_conversation + index) % slots
                channel = conversation + CONVERSATIONS * slot
                await self.app.router.handle(self.console, IncomingMessage(
                    scope=place(channel, self.communities),
                    message_id=f"{repeat}-{conversation}-{index}",
                    author_id=f"user-{conversation}", author_name=f"user {conversation}",
                    text=f"Message {index} of round {repeat}: hello there.", is_direct=True,
                ))

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(converse(c) for c in range(CONVERSATIONS)))
        self.cpu += time.process_time() - cpu
        self.messages += per_conversation * CONVERSATIONS
        return per_conversation * CONVERSATIONS / (time.perf_counter() - start)


async def scale_row(config: BenchConfig) -> Row:
    scales: list[Scale] = []
    for channels, communities in (SMALL, LARGE):
        name = f"routing-{channels}"
        settings = bench_settings(config, name, history_messages=REMEMBERED, **NOT_FLOODING)
        async with Store(settings.db):
            pass  # the schema
        await asyncio.to_thread(fill, settings.db, channels, communities)
        app = App(settings, backend=NoopBackend(),
                  library=bench_library(config.workdir, 64))
        scales.append(Scale(channels, communities, app))
    # The large store again, for a bot with every place read before the rounds.
    settings = bench_settings(config, "routing-warm", history_messages=REMEMBERED,
                              **NOT_FLOODING)
    await asyncio.to_thread(copy_store, scales[1].app.settings.db, settings.db)
    scales.append(Scale(*LARGE, App(
        settings, backend=NoopBackend(), library=bench_library(config.workdir, 64),
        store=Store(settings.db, memory_places=LARGE[0])), warm=True))
    try:
        for scale in scales:
            await scale.start()
        # Turns, so that a change in the machine's load falls on all alike.
        for repeat in range(config.repeats + 1):
            for scale in scales:
                rate = await scale.round(repeat)
                if repeat:
                    scale.rates.append(rate)
                else:
                    scale.reset_counts()  # count the measured rounds only
    finally:
        for scale in scales:
            await scale.app.stop()
    small, large, warm = scales
    ours, baseline, read_before = median(large.rates), median(small.rates), median(warm.rates)
    met = ours >= SCALE_TARGET and baseline <= SCALE_DROP * ours
    return Row(
        9, "Routing at scale: msg/s at 30,000 channels in 10,000 communities (no-op model)",
        "msg/s", ours, baseline, "30 channels in 1 community",
        f"≥ {SCALE_TARGET:,.0f}/s, ≤ {SCALE_DROP}x drop", met,
        details={
            scale.label: {
                "runs": scale.rates,
                "sql_statements_per_message": scale.statements.count / max(1, scale.messages),
                "aiosqlite_round_trips_per_message": scale.round_trips / max(1, scale.messages),
                "cpu_us_per_message": 1e6 * scale.cpu / max(1, scale.messages),
            }
            for scale in scales
        } | {"conversations": CONVERSATIONS, "messages_per_round": MESSAGES,
             "remembered_per_channel": f"{REMEMBERED // 2}-{REMEMBERED} and a summary",
             "drop_with_every_place_read_before": baseline / read_before,
             "us_per_message": {
                 "at 30 channels": 1e6 / baseline,
                 "added by the larger store": 1e6 / read_before - 1e6 / baseline,
                 "added by first touches": 1e6 / ours - 1e6 / read_before}},
    )


def copy_store(source: Path, target: Path) -> None:
    """Copy a closed store's file (blocking)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
