"""``kill -9`` at any moment loses no committed change and never leaves a partial one.

A child process switches a channel's profile and writes memory as fast as it can; it is
killed with SIGKILL at a random moment, 50 times, each time on the database the last run
left. After each kill the database must pass ``PRAGMA integrity_check``, the binding must
be the last committed profile or the one being written (old or new, never anything else),
every committed bind must have its audit row, and memory must hold whole exchanges only.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class KillResult:
    kills: int
    committed_binds: int
    committed_memories: int
    problems: list[str]


async def one_kill(db: Path, delay: float) -> tuple[list[str], str]:
    """Run the child for ``delay`` s, SIGKILL it; its output lines and the stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.reliability.kill_child", str(db), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    assert process.stdout is not None

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            lines.append(raw.decode().strip())

    reader = asyncio.create_task(read())
    # Wait for the first committed change, so every kill lands in the middle of churn.
    while not any(line.startswith("bind ") for line in lines):
        await asyncio.sleep(0.01)
        if process.returncode is not None:
            break
    await asyncio.sleep(delay)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    await reader
    assert process.stderr is not None
    errors = (await process.stderr.read()).decode()
    return lines, errors


def check(db: Path, lines: list[str], audits_before: int) -> tuple[list[str], int, int]:
    """Problems after one kill, the number of audit rows now, and of memory rows."""
    problems: list[str] = []
    connection = sqlite3.connect(db)
    try:
        (integrity,) = connection.execute("PRAGMA integrity_check").fetchone()
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        row = connection.execute(
            "SELECT profile FROM bindings WHERE community='kill' AND channel='general'"
        ).fetchone()
        committed = [line.split()[2] for line in lines if line.startswith("bind ")]
        trying = [line.split()[2] for line in lines if line.startswith("binding ")]
        allowed = {committed[-1]} if committed else set()
        if trying and (not committed or trying[-1] != committed[-1]
                       or len(trying) > len(committed)):
            allowed.add(trying[-1])
        found = row[0] if row else None
        if found not in allowed:
            problems.append(f"binding is {found!r}; expected one of {sorted(allowed)}")
        (audits,) = connection.execute(
            "SELECT COUNT(*) FROM audit WHERE community='kill'").fetchone()
        binds_now = len(committed)
        if not binds_now <= audits - audits_before <= len(trying):
            problems.append(f"{audits - audits_before} audit rows for {binds_now} committed "
                            f"binds ({len(trying)} begun)")
        roles = [r for (r,) in connection.execute(
            "SELECT role FROM history WHERE scope='bench/kill/general/' ORDER BY id")]
        if len(roles) % 2 or any(roles[i:i + 2] != ["user", "assistant"]
                                 for i in range(0, len(roles), 2)):
            problems.append("memory holds half an exchange")
        return problems, audits, len(roles)
    finally:
        connection.close()


async def kill_repeatedly(workdir: Path, kills: int = 50, seed: int = 7) -> KillResult:
    """``kills`` SIGKILLs of a store under churn, checked after each."""
    rng = random.Random(seed)
    db = workdir / "kills.db"
    problems: list[str] = []
    audits = 0
    binds = memories = 0
    for n in range(kills):
        lines, errors = await one_kill(db, rng.uniform(0.0, 0.25))
        if "Traceback" in errors and "KeyboardInterrupt" not in errors:
            problems.append(f"kill {n}: the child failed: {errors.strip().splitlines()[-1]}")
        found, audits_now, _rows = check(db, lines, audits)
        problems.extend(f"kill {n}: {problem}" for problem in found)
        audits = audits_now
        binds += sum(1 for line in lines if line.startswith("bind "))
        memories += sum(1 for line in lines if line.startswith("memory "))
    return KillResult(kills, binds, memories, problems)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(kill_repeatedly(Path(folder)))
    print(result)
