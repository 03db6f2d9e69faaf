"""Rows 11-15: the remote backend, and the batched engine beside llama.cpp's llama-server.

11  one stream through cabot to ``llama-server`` vs a client streaming from it directly
12  4 channels through cabot to ``llama-server -np 4`` vs the same 4 requests sent straight
13  pools of 2 and 4 paced fake servers vs 1 (the pool's routing, not the CPU)
14  a returning channel's time to first text, channel affinity vs round-robin, 2 servers
15  cabot's batched engine vs ``llama-server -np 4`` and ``-np 8``, aggregate tokens/s,
    with a profile of the engine's steps (where the time goes besides ``llama_decode``)

Rows needing ``llama-server`` are left out, with a warning, where it is not built
(``make llama-server``). Every server runs the bench model with the bench's threads,
greedy, and is started and stopped by the row.
"""

from __future__ import annotations

import asyncio
import cProfile
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from unittest import mock

import httpx

from bench.common import BenchConfig, Row, median
from bench.streams import (
    STORY,
    TOPICS,
    batched,
    engine_stats,
    interleave,
    run_channels,
    seed_history,
    start_console,
    where_time_went,
)
from bot.backends.base import GenerationRequest
from bot.backends.continuous_batch import ContinuousBatch
from bot.backends.remote import RemoteBackend
from bot.backends.remote.kinds import chat_body
from bot.backends.remote.pool import Routing
from tests.helpers.fake_openai import Answer, FakeOpenAI
from tests.helpers.inference_servers import ServerProcess, llama_server, llama_server_binary

log = logging.getLogger(__name__)

POOL_PIECES = 64
POOL_INTERVAL = 0.01
"""A paced fake server streams a piece every 10 ms: 100 pieces/s per slot."""
POOL_CHANNELS = 8
CLIENT_ROW_THREADS = 1
"""Rows 11-12 compare two clients of one server on this machine: the server gets one
thread, so a client's own CPU never competes with its decode threads (a deployed server
has a machine of its own)."""


# -- servers and a direct client ----------------------------------------------------------


@asynccontextmanager
async def llama_servers(config: BenchConfig, count: int = 1, *, slots: int = 1,
                        threads: int | None = None
                        ) -> AsyncIterator[list[ServerProcess] | None]:
    """``count`` llama-servers of ``slots`` slots each (None when it is not built)."""
    binary = llama_server_binary()
    if binary is None:
        log.warning("llama-server is not built (make llama-server): its rows are left out")
        yield None
        return
    logs = config.workdir / "server-logs"
    logs.mkdir(exist_ok=True)
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(await asyncio.to_thread(
                llama_server, binary, config.model, logs, slots=slots,
                n_threads=threads or config.n_threads))
        yield started
    finally:
        for server in started:
            await asyncio.to_thread(server.stop)


def remote(servers: list[ServerProcess], routing: Routing = "affinity") -> RemoteBackend:
    return RemoteBackend([s.url for s in servers], kind="llama-server", routing=routing,
                         health_interval=3600)


def direct_body(request: GenerationRequest) -> dict[str, Any]:
    """What a plain client sends for ``request``: the same messages and sampling."""
    return chat_body("llama-server", request, model="default", max_tokens=request.max_tokens,
                     messages=[{"role": m.role, "content": m.content} for m in request.messages],
                     logit_bias={})


async def stream_directly(http: httpx.AsyncClient, url: str, body: dict[str, Any]
                          ) -> tuple[int, float, float]:
    """Stream one completion with httpx alone: (text events, first one's time, last one's)."""
    import json

    tokens, first, last = 0, 0.0, 0.0
    async with http.stream("POST", url + "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                last = time.perf_counter()
                first = first or last
                tokens += 1
    return tokens, first, last


# -- 11. single stream -------------------------------------------------------------------------


async def remote_stream(config: BenchConfig) -> list[Row]:
    """Tokens/s through cabot to llama-server vs a client streaming from it directly."""
    async with llama_servers(config, threads=CLIENT_ROW_THREADS) as servers:
        if servers is None:
            return []
        bot = await start_console(config, "remote-stream", remote(servers), max_tokens=128)
        ours: list[float] = []
        direct: list[float] = []
        try:
            async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
                for repeat in range(2 * config.repeats):
                    for turn in ((0, 1) if repeat % 2 == 0 else (1, 0)):
                        if turn == 0 or not bot.backend.requests:
                            await bot.say(f"remote-stream-{repeat}", STORY)
                            stats = bot.last_stats
                            assert stats is not None and stats.first_text_at is not None
                            assert stats.finished_at is not None
                            ours.append((stats.pieces - 1)
                                        / max(stats.finished_at - stats.first_text_at, 1e-9))
                        if turn == 1:
                            body = direct_body(bot.backend.requests[-1])
                            tokens, first, last = await stream_directly(
                                http, servers[0].url, body)
                            direct.append((tokens - 1) / max(last - first, 1e-9))
        finally:
            await bot.stop()
    return [Row(
        11, "Remote: single stream tokens/s through cabot to llama-server", "tok/s",
        median(ours), median(direct), "a client streaming from the same llama-server",
        "≥ 97%", median(ours) >= 0.97 * median(direct),
        details={"ours_runs": ours, "direct_runs": direct},
    )]


# -- 12. four channels on -np 4 ------------------------------------------------------------


async def remote_channels(config: BenchConfig) -> list[Row]:
    """4 channels at once through cabot to llama-server -np 4 vs the 4 requests straight."""
    async with llama_servers(config, slots=4, threads=CLIENT_ROW_THREADS) as servers:
        if servers is None:
            return []
        bot = await start_console(config, "remote-channels", remote(servers), max_tokens=64,
                                  wait=False)
        ours: list[float] = []
        direct: list[float] = []
        try:
            assert bot.backend.max_parallel == 4, "llama-server -np 4 reports 4 slots"
            async with httpx.AsyncClient(timeout=120, trust_env=False) as http:
                # One round each, not counted: the server's first requests, cabot's first
                # connections and first-seen texts are start-up costs, not the pace.
                await run_channels(bot, [f"remote-ch-warm-{i}" for i in range(4)])
                await straight(http, servers[0].url,
                               [direct_body(r) for r in bot.backend.requests[-4:]])
                for repeat in range(2 * config.repeats):
                    # Alternate who goes first, so a change in machine load hits both alike.
                    if repeat % 2 == 1:
                        bodies = [direct_body(r) for r in bot.backend.requests[-4:]]
                        direct.append(await straight(http, servers[0].url, bodies))
                    names = [f"remote-ch-{repeat}-{i}" for i in range(4)]
                    seconds, tokens = await run_channels(bot, names)
                    ours.append(tokens / seconds)
                    if repeat % 2 == 0:
                        bodies = [direct_body(r) for r in bot.backend.requests[-4:]]
                        direct.append(await straight(http, servers[0].url, bodies))
        finally:
            await bot.stop()
    return [Row(
        12, "Remote: aggregate tokens/s, 4 channels through cabot to llama-server -np 4",
        "tok/s", median(ours), median(direct), "the same 4 requests sent straight to it",
        "≥ 0.95x", median(ours) >= 0.95 * median(direct),
        details={"ours_runs": ours, "direct_runs": direct},
    )]


async def straight(http: httpx.AsyncClient, url: str, bodies: list[dict[str, Any]]) -> float:
    """Aggregate text events per second of ``bodies`` streamed at once, directly."""
    start = time.perf_counter()
    results = await asyncio.gather(*(stream_directly(http, url, b) for b in bodies))
    return sum(tokens for tokens, _, _ in results) / (time.perf_counter() - start)


# -- 13. pool scaling -----------------------------------------------------------------------


async def remote_pool(config: BenchConfig) -> list[Row]:
    """Pools of 1, 2 and 4 paced fake servers (one slot each), 8 channels at once."""
    rates: dict[int, list[float]] = {1: [], 2: [], 4: []}
    for repeat in range(config.repeats):
        for size in rates:
            fakes = [FakeOpenAI(default=Answer(pieces=["word "] * POOL_PIECES,
                                               interval=POOL_INTERVAL)) for _ in range(size)]
            for fake in fakes:
                await fake.start()
            backend = RemoteBackend([f.url for f in fakes], kind="llama-server",
                                    health_interval=3600)
            bot = await start_console(config, f"remote-pool-{size}-{repeat}", backend,
                                      max_tokens=POOL_PIECES, wait=False)
            try:
                names = [f"pool-{size}-{repeat}-{i}" for i in range(POOL_CHANNELS)]
                seconds, pieces = await run_channels(bot, names)
                rates[size].append(pieces / seconds)
            finally:
                await bot.stop()
                for fake in fakes:
                    await fake.stop()
    one = median(rates[1])
    return [Row(
        13, f"Remote: pool of {size} paced fake servers, {POOL_CHANNELS} channels at once",
        "pieces/s", median(rates[size]), one, "one server of the same pace",
        f"≥ {target}x", median(rates[size]) >= target * one,
        details={"runs": rates[size], "one_server_runs": rates[1]},
    ) for size, target in ((2, 1.9), (4, 3.7))]


# -- 14. affinity vs round-robin ------------------------------------------------------------


async def remote_affinity(config: BenchConfig) -> list[Row]:
    """A returning channel's time to first text over 2 llama-servers (2 slots each)."""
    # 3 channels: round-robin moves each one every round. The first two rounds settle
    # the history cabot keeps (first-seen texts are budgeted at a token per byte until
    # the server has counted them); the rest are measured.
    channels, exchanges, rounds, settle = 3, 6, 4, 2
    results: dict[str, list[list[float]]] = {}
    async with llama_servers(config, 2, slots=2) as servers:
        if servers is None:
            return []
        for routing in ("affinity", "round-robin"):
            bot = await start_console(config, f"remote-{routing}", remote(servers, routing),
                                      max_tokens=32)
            try:
                names = [f"{routing}-{i}" for i in range(channels)]
                for index, name in enumerate(names):
                    await seed_history(bot, name, TOPICS[index], exchanges)
                results[routing] = await interleave(bot, names, rounds)
            finally:
                await bot.stop()
    ours = median([t for row in results["affinity"][settle:] for t in row])
    base = median([t for row in results["round-robin"][settle:] for t in row])
    return [Row(
        14, "Remote: time to first text, returning channel, 2 llama-servers (affinity)", "s",
        ours, base, "round-robin routing over the same servers", "< round-robin", ours < base,
        details={"runs": results},
    )]


# -- 15. batched engine vs llama-server -------------------------------------------------------


async def engine_vs_llama_server(config: BenchConfig) -> list[Row]:
    """cabot's batched engine (through the bot) vs llama-server -np N (requests straight)."""
    profile = StepProfile()
    with profile.installed():
        return await _engine_vs_llama_server(config, profile)


async def _engine_vs_llama_server(config: BenchConfig, profile: StepProfile) -> list[Row]:
    rows = []
    ours_bot = await start_console(config, "engine-vs-server", batched(config, parallel=8),
                                   max_tokens=64, wait=False, parallel=8)
    try:
        for count in (4, 8):
            ours: list[float] = []
            theirs: list[float] = []
            async with llama_servers(config, slots=count) as servers:
                if servers is None:
                    return []
                before = engine_stats(ours_bot)
                async with httpx.AsyncClient(timeout=300, trust_env=False) as http:
                    for repeat in range(config.repeats):
                        names = [f"evs-{count}-{repeat}-{i}" for i in range(count)]
                        seconds, tokens = await run_channels(ours_bot, names)
                        ours.append(tokens / seconds)
                        bodies = [direct_body(r) for r in ours_bot.backend.requests[-count:]]
                        theirs.append(await straight(http, servers[0].url, bodies))
                spent = where_time_went(before, engine_stats(ours_bot))
                profile.reset()
                profile.active = True  # one more run, profiled and not counted
                profiled, _ = await run_channels(
                    ours_bot, [f"evs-{count}-profiled-{i}" for i in range(count)])
                profile.active = False
            rows.append(Row(
                15, f"Batched engine vs llama-server -np {count}: aggregate tokens/s, "
                f"{count} channels", "tok/s", median(ours), median(theirs),
                f"llama-server -np {count}, the same requests straight", "≥ 1.1x",
                median(ours) >= 1.1 * median(theirs),
                details={"ours_runs": ours, "llama_server_runs": theirs, **spent,
                         "step_profile": {**profile.summary(), "profiled_run_s": profiled}},
            ))
    finally:
        await ours_bot.stop()
    return rows


class StepProfile:
    """cProfile around each step of the batched engine, in its worker thread.

    A ctypes call is not a profiled call of its own: the time inside ``llama_decode`` is
    the self time of ``NativeContext._run``, and the sampler chain's C code (with any
    Python logits processor it calls back) is inside ``SequenceSampler.sample``.
    """

    GROUPS: tuple[tuple[str, str, bool], ...] = (
        # (name in the summary, the function's qualified name, self time only)
        ("llama_decode", "NativeContext._run", True),
        ("sampler_chain", "SequenceSampler.sample", False),
        ("token_text", "Vocabulary.piece", False),
        ("stop_and_text_stream", "StopTextStream.feed", False),
        ("to_event_loop", "ThreadBridge.send", False),
    )

    def __init__(self) -> None:
        self.profiler = cProfile.Profile()
        self.seconds = 0.0
        self.active = False
        """Profiling slows the engine: on only for a run that is not measured."""

    def reset(self) -> None:
        self.profiler = cProfile.Profile()
        self.seconds = 0.0

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Profile every ``ContinuousBatch.step`` of engines started inside (and after)."""
        original: Callable[[ContinuousBatch], None] = ContinuousBatch.step
        profile = self

        def step(batch: ContinuousBatch) -> None:
            if not profile.active:
                original(batch)
                return
            started = time.perf_counter()
            profile.profiler.enable()
            try:
                original(batch)
            finally:
                profile.profiler.disable()
                profile.seconds += time.perf_counter() - started

        with mock.patch.object(ContinuousBatch, "step", step):
            yield

    def summary(self) -> dict[str, Any]:
        """Seconds inside steps, each kind of work's share of them, and the top self times."""
        total = max(self.seconds, 1e-9)
        spent: dict[str, float] = {}
        own: dict[str, float] = {}
        for entry in self.profiler.getstats():
            name = (entry.code.co_qualname if not isinstance(entry.code, str)
                    else entry.code)
            for group, qualname, self_only in self.GROUPS:
                if name == qualname or name.endswith("." + qualname):
                    value = entry.inlinetime if self_only else entry.totaltime
                    spent[group] = spent.get(group, 0.0) + value
            own[name] = own.get(name, 0.0) + entry.inlinetime
        shares: dict[str, Any] = {"step_seconds": self.seconds}
        shares.update({f"{group}_share": spent.get(group, 0.0) / total
                       for group, _, _ in self.GROUPS})
        top = sorted(own.items(), key=lambda item: -item[1])[:8]
        shares["top_self_time"] = {name: round(seconds / total, 4) for name, seconds in top}
        return shares
