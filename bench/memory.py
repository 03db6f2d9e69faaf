"""Row 5: peak memory of the bot holding 8 resident conversations vs a bare llama-cpp-python.

Each measurement is a fresh subprocess (``python -m bench.memory PROBE MODEL THREADS``)
that loads the model, does its work and prints its peak resident set size, so nothing
the parent process allocated counts. The bot probes hold 8 channels, each with a
conversation of about 500 tokens (six earlier exchanges in the store, then one message
per channel and a second round that finds each one resident); the bare process answers
one message at ``n_ctx`` 2048.
"""

from __future__ import annotations

import asyncio
import io
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import BenchConfig, Row

PROBES = ("bot-batched", "bot-batched-reserved", "bot-batched-q8", "bot-single", "bare")
"""The defaults (a shared KV budget); before it, a full ``n_ctx`` reserved per resident
channel (``CABOT_KV_TOKENS=0``); the q8_0 cache; the single engine; the bare process."""
OVERRIDES: dict[str, dict[str, Any]] = {
    "bot-batched": {},
    "bot-batched-reserved": {"kv_tokens": 0},
    "bot-batched-q8": {"kv_type": "q8_0"},
    "bot-single": {"engine": "single"},
}
CHANNELS = 8
EXCHANGES = 6
"""Earlier exchanges per channel: with the system prompt, about 500 tokens."""
QUESTION = "What is the capital of France?"
TARGET = 1.5


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB.

    ``VmHWM`` starts afresh with each program, whereas ``ru_maxrss`` survives ``exec`` and
    would report the parent's peak for a child of a big process.
    """
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def probe_bot(model: Path, threads: int, overrides: dict[str, Any]) -> dict[str, Any]:
    """Hold ``CHANNELS`` conversations of about 500 tokens; what the engine kept."""
    from adapters.console import ConsoleAdapter
    from bench.streams import TOPICS, filler
    from bot.app import App
    from bot.backends.batched import BatchedBackend
    from bot.messages import Scope
    from bot.settings import Settings

    with tempfile.TemporaryDirectory() as workdir:
        # One console user asks every question: no rate limit may refuse one of them.
        values: dict[str, Any] = {"model": model, "db": Path(workdir) / "cabot.db",
                                  "n_threads": threads, "user_rate": 1_000_000,
                                  "flood_messages": 1_000_000, **overrides}
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        app = App(settings)
        console = ConsoleAdapter(io.StringIO(), settle=app.router.drain)
        await app.start([console])
        try:
            channels = [f"memory-{i}" for i in range(CHANNELS)]
            scopes = [Scope(platform="console", community=console.community, channel=channel)
                      for channel in channels]
            for index, scope in enumerate(scopes):
                for turn in range(EXCHANGES):
                    question, answer = filler(TOPICS[index % len(TOPICS)], turn)
                    await app.store.conversations.append_exchange(
                        scope, [("user", question), ("assistant", answer)],
                        settings.history_messages,
                    )
            for question in (QUESTION, "And of Italy?"):
                for channel in channels:
                    console.channel = channel
                    await console.say(question)
            questions = 2 * len(channels)
            remembered = [await app.store.conversations.history(scope, 4 * EXCHANGES)
                          for scope in scopes]
            answered = sum(len(turns) // 2 - EXCHANGES for turns in remembered)
            if answered != questions:  # a refused question would measure fewer channels
                raise RuntimeError(f"the bot answered {answered} of {questions} questions")
            backend = app.backend
            if not isinstance(backend, BatchedBackend):
                return {}
            table, stats = backend.engine.table, backend.engine.stats
            return {"resident_channels": sum(1 for s in scopes if table.resident(s.key())),
                    "kv_tokens_held": table.held(), "peak_kv_tokens": stats.peak_kv_tokens,
                    "evictions": stats.evictions, "reused_tokens": stats.reused_tokens}
        finally:
            await app.stop()


def probe_bare(model: Path, threads: int) -> None:
    from llama_cpp import Llama

    llama = Llama(model_path=str(model), n_ctx=2048, n_threads=threads, verbose=False)
    for _ in llama.create_chat_completion(
        messages=[{"role": "user", "content": QUESTION}], max_tokens=32, stream=True
    ):
        pass
    llama.close()


def main(argv: list[str]) -> None:
    """The subprocess: run one probe and print its peak RSS (and what it kept) as JSON."""
    probe, model, threads = argv[0], Path(argv[1]), int(argv[2])
    kept: dict[str, Any] = {}
    if probe == "bare":
        probe_bare(model, threads)
    else:
        kept = asyncio.run(probe_bot(model, threads, OVERRIDES[probe]))
    print(json.dumps({"probe": probe, "peak_rss_mb": peak_rss_mb(), **kept}))


def measure(probe: str, config: BenchConfig) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", probe, str(config.model), str(config.n_threads)],
        capture_output=True, text=True, check=True, timeout=900,
        cwd=Path(__file__).resolve().parents[1],
    )
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


async def memory(config: BenchConfig) -> Row:
    found = {probe: await asyncio.to_thread(measure, probe, config) for probe in PROBES}
    peaks = {probe: float(found[probe]["peak_rss_mb"]) for probe in PROBES}
    ours, bare = peaks["bot-batched"], peaks["bare"]
    kept = {key: value for key, value in found["bot-batched"].items()
            if key not in ("probe", "peak_rss_mb")}
    return Row(
        5, f"Peak RSS: bot (batched engine, defaults) holding {CHANNELS} resident channels "
        "of ~500-token conversations",
        "MiB", ours, bare, "bare llama-cpp-python process, n_ctx 2048",
        f"≤ {TARGET}x", ours <= TARGET * bare,
        details={"reserved_kv_per_channel_mib": peaks["bot-batched-reserved"],
                 "q8_0_kv_mib": peaks["bot-batched-q8"],
                 "bot_single_engine_mib": peaks["bot-single"],
                 "reserved_resident_channels":
                     found["bot-batched-reserved"].get("resident_channels"),
                 **kept},
    )


if __name__ == "__main__":
    main(sys.argv[1:])
