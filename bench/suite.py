"""`python -m bench`: run every row in one process, print the table, write JSON and Markdown."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import BenchConfig, Machine, Row
from bench.report import markdown_table, text_table, write_json

log = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
# Memory runs first: its probes are fresh processes, but the parent's own size stays
# smallest before any engine has been loaded in it.
ROWS = ("memory", "stream", "aggregate", "returning", "fairness", "routing", "gemma-stream",
        "gemma-channels", "redteam",
        "remote-stream", "remote-channels", "remote-pool", "remote-affinity",
        "engine-vs-server")


def runners() -> dict[str, Callable[[BenchConfig], Awaitable[Row | list[Row]]]]:
    from bench.fairness import fairness
    from bench.gemma import gemma_channels, gemma_stream
    from bench.memory import memory
    from bench.redteam import redteam
    from bench.remote import (
        engine_vs_llama_server,
        remote_affinity,
        remote_channels,
        remote_pool,
        remote_stream,
    )
    from bench.routing import routing
    from bench.streams import aggregate, returning, single_stream

    return {"stream": single_stream, "aggregate": aggregate, "returning": returning,
            "fairness": fairness, "memory": memory, "routing": routing,
            "gemma-stream": gemma_stream, "gemma-channels": gemma_channels,
            "redteam": redteam,
            "remote-stream": remote_stream, "remote-channels": remote_channels,
            "remote-pool": remote_pool, "remote-affinity": remote_affinity,
            "engine-vs-server": engine_vs_llama_server}


async def run(config: BenchConfig, only: list[str]) -> list[Row]:
    rows: list[Row] = []
    table = runners()
    for name in only:
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        result = await table[name](config)
        rows.extend(result if isinstance(result, list) else [result])
        print(f"  {name}: {time.perf_counter() - started:.1f} s (load {os.getloadavg()[0]:.2f})",
              file=sys.stderr, flush=True)
    return sorted(rows, key=lambda row: row.number)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS),
                        help="run only these rows")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="llama.cpp threads for every engine (default: every CPU)")
    parser.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--markdown", type=Path, default=RESULTS / "latest.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")

    from bot.settings import Settings

    machine = Machine.describe()
    started = time.perf_counter()
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="cabot-bench-") as workdir:
        config = BenchConfig(
            model=Settings(_env_file=None).model_path(),  # type: ignore[call-arg]
            workdir=Path(workdir), n_threads=args.threads, repeats=args.repeats,
        )
        rows = asyncio.run(run(config, args.only))
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    header = (f"cabot benchmarks, {when}: {machine.nproc} CPUs ({machine.cpu}), "
              f"Python {machine.python}, {config.n_threads} llama.cpp threads; "
              f"load average {machine.load_before[0]:.2f} before, {load_after[0]:.2f} after; "
              f"{elapsed:.0f} s")
    print(header)
    print(text_table(rows))
    extra = {"date": when, "seconds": elapsed, "load_after": load_after,
             "threads": config.n_threads, "model": config.model.name}
    write_json(args.json, machine, rows, extra)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(header + "\n\n" + markdown_table(rows) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json} and {args.markdown}")
    return 0
