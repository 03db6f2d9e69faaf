"""The SQLite store: schema versions, durability, bindings, audit, memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from bot.errors import SchemaTooNewError, StoreError
from bot.messages import Scope
from bot.store import HISTORY_TRIM_SLACK, SCHEMA_VERSION, Actor, Store

MOD = Actor(id="42", name="mod")
GENERAL = Scope(platform="discord", community="g1", channel="c1")


async def test_new_database_gets_current_schema_in_wal_mode(tmp_path: Path) -> None:
    async with Store(tmp_path / "a.db") as store:
        assert await store.schema_version() == SCHEMA_VERSION
        async with store.db.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        assert row is not None and row[0] == "wal"


async def test_reopening_migrates_nothing_twice_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Store(path) as store:
        await store.bind(GENERAL, "channel", MOD, profile="kids")
    async with Store(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
        bindings = await store.bindings_for(GENERAL)
        assert bindings["channel"].profile == "kids"


async def test_refuses_a_database_from_a_newer_cabot(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(SchemaTooNewError) as error:
        await Store(path).open()
    assert "newer than this cabot" in str(error.value)
    assert "CABOT_DB" in str(error.value)


async def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="Cannot open the database"):
        await Store(path).open()


async def test_bind_records_audit_with_old_and_new(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000)).__next__
    async with Store(tmp_path / "a.db", clock=lambda: float(clock())) as store:
        assert await store.bind(GENERAL, "channel", MOD, profile="kids") is None
        old = await store.bind(GENERAL, "channel", Actor("7", "alice"), layers=("base", "humor"))
        assert old is not None and old.profile == "kids"
        await store.bind(GENERAL, "channel", MOD)  # reset
        assert await store.bindings_for(GENERAL) == {}
        log = await store.audit_log("discord", "g1")
    assert [(e.actor_name, e.old, e.new) for e in log] == [
        ("mod", "layers base, humor", None),
        ("alice", "profile 'kids'", "layers base, humor"),
        ("mod", None, "profile 'kids'"),
    ]
    assert log[-1].at < log[0].at


async def test_levels_are_kept_apart(tmp_path: Path) -> None:
    thread = GENERAL.model_copy(update={"thread": "t1"})
    async with Store(tmp_path / "a.db") as store:
        await store.bind(thread, "community", MOD, profile="researcher")
        await store.bind(thread, "thread", MOD, profile="storyteller")
        found = await store.bindings_for(thread)
        assert found["community"].profile == "researcher"
        assert found["thread"].profile == "storyteller"
        assert "channel" not in found
        other = Scope(platform="discord", community="g1", channel="c2")
        assert set(await store.bindings_for(other)) == {"community"}
        with pytest.raises(StoreError, match="no thread"):
            await store.bind(GENERAL, "thread", MOD, profile="kids")


async def test_history_is_bounded_and_per_channel(tmp_path: Path) -> None:
    other = Scope(platform="discord", community="g1", channel="c2")
    elsewhere = Scope(platform="telegram", community="g1", channel="c1")
    path = tmp_path / "a.db"
    async with Store(path) as store:
        assert await store.history(GENERAL, 5) == []  # cached empty, then kept up to date
        for i in range(40):
            await store.append_history(GENERAL, "user", f"m{i}", keep=5)
        await store.append_history(other, "user", "other channel", keep=5)
        assert [c for _, c in await store.history(GENERAL, 5)] == [f"m{i}" for i in range(35, 40)]
        async with store.db.execute(
            "SELECT count(*) FROM history WHERE scope=?", (GENERAL.key(),)
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None and 5 <= row[0] <= 5 + HISTORY_TRIM_SLACK
        assert await store.history(other, 5) == [("user", "other channel")]
        assert await store.history(elsewhere, 5) == []
    async with Store(path) as store:  # a fresh process reads the same memory back
        assert [c for _, c in await store.history(GENERAL, 5)] == [f"m{i}" for i in range(35, 40)]
        assert await store.clear_history(GENERAL) == row[0]
        assert await store.history(GENERAL, 5) == []
        assert await store.history(other, 5) == [("user", "other channel")]


async def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    async with Store(tmp_path / "a.db") as store:
        scopes = [Scope(platform="p", community="c", channel=str(i)) for i in range(20)]
        await asyncio.gather(*(
            store.bind(s, "channel", MOD, profile="kids") for s in scopes
        ), *(store.append_history(s, "user", "x", keep=3) for s in scopes))
        assert len(await store.audit_log("p", "c", limit=100)) == 20
        for s in scopes:
            assert (await store.bindings_for(s))["channel"].profile == "kids"


WRITER = textwrap.dedent("""
    import asyncio, os, sys
    from bot.messages import Scope
    from bot.store import Actor, Store

    async def main() -> None:
        store = Store(sys.argv[1])
        await store.open()
        scope = Scope(platform="p", community="c", channel="x")
        for i in range(1000000):
            await store.append_history(scope, "user", f"m{i}", keep=100000)
            if i == 50:
                print("ready", flush=True)
    asyncio.run(main())
""")


async def test_committed_writes_survive_a_crash_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(path),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line.strip() == b"ready"
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    async with Store(path) as store:
        rows = await store.history(Scope(platform="p", community="c", channel="x"), 1_000_000)
    # At least everything before "ready" was committed, and nothing is torn.
    assert len(rows) >= 51
    assert [c for _, c in rows] == [f"m{i}" for i in range(len(rows))]


async def test_alignment_changes_are_fsynced_and_memory_is_not(tmp_path: Path) -> None:
    async def synchronous(store: Store) -> int:
        async with store.db.execute("PRAGMA synchronous") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async with Store(tmp_path / "a.db") as store:
        assert await synchronous(store) == 2  # FULL
        await store.append_exchange(GENERAL, [("user", "hi"), ("assistant", "hello")], keep=10)
        assert await synchronous(store) == 1  # NORMAL
        await store.bind(GENERAL, "channel", MOD, profile="kids")
        assert await synchronous(store) == 2
        assert await store.history(GENERAL, 10) == [("user", "hi"), ("assistant", "hello")]


async def test_a_write_cancelled_mid_transaction_leaves_the_store_usable(tmp_path: Path) -> None:
    async with Store(tmp_path / "a.db") as store:
        await store.append_history(GENERAL, "user", "warm-up", keep=10)
        for steps in range(1, 6):  # cancel at different points of the transaction
            task = asyncio.create_task(store.append_history(GENERAL, "user", "hi", keep=10))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.bind(GENERAL, "channel", MOD, profile=f"p{steps}")
            assert (await store.bindings_for(GENERAL))["channel"].profile == f"p{steps}"
        assert not store.db.in_transaction
