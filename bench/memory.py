"""Row 5: peak memory of the bot with the model loaded vs a bare llama-cpp-python process.

Each measurement is a fresh subprocess (``python -m bench.memory PROBE MODEL THREADS``)
that loads the model, answers one message and prints its peak resident set size, so
nothing the parent process allocated counts.
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
from typing import Any, Literal

from bench.common import BenchConfig, Row

PROBES = ("bot-batched", "bot-batched-resident-4", "bot-single", "bare")
QUESTION = "What is the capital of France?"


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


async def probe_bot(
    model: Path, threads: int, engine: Literal["batched", "single"], resident: int | None = None
) -> None:
    from adapters.console import ConsoleAdapter
    from bot.app import App
    from bot.settings import Settings

    with tempfile.TemporaryDirectory() as workdir:
        values: dict[str, Any] = {"model": model, "db": Path(workdir) / "cabot.db",
                                  "engine": engine, "n_threads": threads}
        if resident is not None:  # otherwise the default, whatever it is
            values["resident_channels"] = resident
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        app = App(settings)
        console = ConsoleAdapter(io.StringIO(), settle=app.router.drain)
        await app.start([console])
        try:
            await console.say(QUESTION)
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
    """The subprocess: run one probe and print its peak RSS as JSON."""
    probe, model, threads = argv[0], Path(argv[1]), int(argv[2])
    if probe == "bare":
        probe_bare(model, threads)
    elif probe == "bot-single":
        asyncio.run(probe_bot(model, threads, "single"))
    elif probe == "bot-batched-resident-4":
        asyncio.run(probe_bot(model, threads, "batched", resident=4))
    else:
        asyncio.run(probe_bot(model, threads, "batched"))
    print(json.dumps({"probe": probe, "peak_rss_mb": peak_rss_mb()}))


def measure(probe: str, config: BenchConfig) -> float:
    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", probe, str(config.model), str(config.n_threads)],
        capture_output=True, text=True, check=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    return float(json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"])


async def memory(config: BenchConfig) -> Row:
    peaks = {probe: await asyncio.to_thread(measure, probe, config) for probe in PROBES}
    ours, bare = peaks["bot-batched"], peaks["bare"]
    return Row(
        5, "Peak RSS: bot process (batched engine, defaults) with the model loaded",
        "MiB", ours, bare, "bare llama-cpp-python process, n_ctx 2048",
        "(reported)", None,
        details={"bot_single_engine_mib": peaks["bot-single"],
                 "bot_batched_4_resident_channels_mib": peaks["bot-batched-resident-4"],
                 "per_resident_channel_mib":
                     (ours - peaks["bot-batched-resident-4"]) / (8 - 4)},
    )


if __name__ == "__main__":
    main(sys.argv[1:])
