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

import bot.store.conversation
from bot.app import App
from bot.errors import SchemaTooNewError, StoreError
from bot.messages import Scope
from bot.store import Actor, Store
from bot.store.connection import MIGRATIONS, SCHEMA_VERSION
from bot.store.conversation import HISTORY_TRIM_SLACK
from tests.helpers.apps import make_settings
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

MOD = Actor(id="42", name="mod")
GENERAL = Scope(platform="discord", community="g1", channel="c1")


async def test_new_database_gets_current_schema_in_wal_mode(store: Store) -> None:
    assert await store.database.schema_version() == SCHEMA_VERSION
    async with store.database.db.execute("PRAGMA journal_mode") as cursor:
        row = await cursor.fetchone()
    assert row is not None and row[0] == "wal"


async def test_reopening_migrates_nothing_twice_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    async with Store(path) as store:
        await store.alignment.bind(GENERAL, "channel", MOD, profile="kids")
    async with Store(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        bindings = await store.alignment.bindings_for(GENERAL)
        assert bindings["channel"].profile == "kids"


async def test_memory_kept_before_it_was_ordered_by_place_is_all_there_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:6], 1):
            db.executescript(f"{script}\nPRAGMA user_version = {number};")
        for index in range(6):  # two places' turns, interleaved as they were written
            for scope in ("discord/g1/c1/", "discord/g1/c2/"):
                db.execute("INSERT INTO history (scope, role, content, at, author) "
                           "VALUES (?, ?, ?, ?, ?)", (scope, "user", f"{scope} {index}",
                                                      float(index), "7"))
        db.execute("DELETE FROM history WHERE id > 10")  # the newest ids are free again
    other = Scope(platform="discord", community="g1", channel="c2")
    async with Store(path) as store:
        assert await store.database.schema_version() == SCHEMA_VERSION
        turns = await store.summaries.recent(GENERAL, 40)
        assert [turn.content for turn in turns] == [f"discord/g1/c1/ {i}" for i in range(5)]
        assert [turn.author for turn in turns] == ["7"] * 5
        assert len(await store.summaries.recent(other, 40)) == 5
        await store.conversations.append_exchange(GENERAL, [("user", "new")], keep=40)
        newest = (await store.summaries.recent(GENERAL, 40))[-1]
        assert newest.content == "new" and newest.id == 13  # no id is handed out twice
    async with Store(path) as store:  # after a restart the ids go on past those
        await store.conversations.append_exchange(other, [("user", "later")], keep=40)
        assert (await store.summaries.recent(other, 40))[-1].id > 13
        assert [turn.content for turn in await store.summaries.recent(GENERAL, 3)] == [
            "discord/g1/c1/ 3", "discord/g1/c1/ 4", "new"]
        rows = await store.database.db.execute_fetchall("PRAGMA integrity_check")
        assert [tuple(row) for row in rows] == [("ok",)]


async def test_the_file_always_holds_a_next_turn_id_past_every_id_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.store.conversation, "IDS_RESERVED", 3)
    path = tmp_path / "a.db"

    async def ids_on_disk(store: Store) -> tuple[int, int]:
        await store.database.writes.drain()
        (next_id,), = await store.database.db.execute_fetchall("SELECT next FROM history_ids")
        (used,), = await store.database.db.execute_fetchall("SELECT MAX(id) FROM history")
        return int(next_id), int(used)

    seen: list[int] = []
    for _ in range(2):  # each start reserves afresh, as after a crash
        async with Store(path) as store:
            for i in range(4):
                await store.conversations.append_exchange(
                    GENERAL, [("user", f"q{i}"), ("assistant", f"a{i}")], keep=100)
                next_id, used = await ids_on_disk(store)
                assert next_id > used
            seen += [turn.id for turn in await store.summaries.recent(GENERAL, 100)][len(seen):]
    assert len(seen) == 16 and seen == sorted(set(seen))


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


async def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    with pytest.raises(StoreError, match="not open"):
        await store.alignment.bindings_for(GENERAL)
    with pytest.raises(StoreError, match="not open"):
        await store.conversations.append_history(GENERAL, "user", "hi", keep=5)


async def test_bind_records_audit_with_old_and_new(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000)).__next__
    async with Store(tmp_path / "a.db", clock=lambda: float(clock())) as store:
        alignment = store.alignment
        assert await alignment.bind(GENERAL, "channel", MOD, profile="kids") is None
        alice = Actor("7", "alice")
        old = await alignment.bind(GENERAL, "channel", alice, layers=("base", "humor"))
        assert old is not None and old.profile == "kids"
        await alignment.bind(GENERAL, "channel", MOD)  # reset
        assert await alignment.bindings_for(GENERAL) == {}
        log = await alignment.audit_log("discord", "g1")
    assert [(e.actor_name, e.old, e.new) for e in log] == [
        ("mod", "layers base, humor", None),
        ("alice", "profile 'kids'", "layers base, humor"),
        ("mod", None, "profile 'kids'"),
    ]
    assert log[-1].at < log[0].at


async def test_concurrent_binds_each_audit_the_binding_they_replaced(store: Store) -> None:
    alignment = store.alignment
    await alignment.bind(GENERAL, "channel", MOD, profile="kids")
    olds = await asyncio.gather(
        alignment.bind(GENERAL, "channel", Actor("1", "ann"), profile="researcher"),
        alignment.bind(GENERAL, "channel", Actor("2", "bob"), profile="storyteller"),
    )
    log = await alignment.audit_log("discord", "g1")
    changes = [(e.old, e.new) for e in reversed(log)]
    assert changes == [
        (None, "profile 'kids'"),
        ("profile 'kids'", "profile 'researcher'"),
        ("profile 'researcher'", "profile 'storyteller'"),
    ]
    assert [old.profile if old else None for old in olds] == ["kids", "researcher"]


async def test_concurrent_reply_mode_changes_each_audit_the_mode_they_replaced(
    store: Store,
) -> None:
    conversations = store.conversations
    await asyncio.gather(
        conversations.set_reply_mode(GENERAL, "always", MOD),
        conversations.set_reply_mode(GENERAL, "addressed", MOD),
    )
    assert await conversations.reply_mode(GENERAL) == "addressed"
    log = await store.alignment.audit_log("discord", "g1")
    assert [(e.action, e.old, e.new) for e in reversed(log)] == [
        ("reply mode", None, "always"),
        ("reply mode", "always", "addressed"),
    ]


async def test_levels_are_kept_apart(store: Store) -> None:
    thread = GENERAL.model_copy(update={"thread": "t1"})
    alignment = store.alignment
    await alignment.bind(thread, "community", MOD, profile="researcher")
    await alignment.bind(thread, "thread", MOD, profile="storyteller")
    found = await alignment.bindings_for(thread)
    assert found["community"].profile == "researcher"
    assert found["thread"].profile == "storyteller"
    assert "channel" not in found
    other = Scope(platform="discord", community="g1", channel="c2")
    assert set(await alignment.bindings_for(other)) == {"community"}
    with pytest.raises(StoreError, match="no thread"):
        await alignment.bind(GENERAL, "thread", MOD, profile="kids")


async def test_only_alignment_writes_change_the_alignment_generation(store: Store) -> None:
    alignment, conversations = store.alignment, store.conversations
    before = alignment.generation
    await conversations.append_exchange(GENERAL, [("user", "hi")], keep=5)
    await conversations.clear_history(GENERAL)
    await conversations.set_reply_mode(GENERAL, "always", MOD)
    assert alignment.generation == before
    await alignment.bind(GENERAL, "channel", MOD, profile="kids")
    assert alignment.generation > before
    before = alignment.generation
    await alignment.save_custom_layer("discord", "g1", "x", 'name = "x"\n', MOD)
    assert alignment.generation > before
    before = alignment.generation
    await alignment.save_custom_profile("discord", "g1", "y", ("base",), "", MOD)
    assert alignment.generation > before


async def test_history_is_bounded_and_per_channel(tmp_path: Path) -> None:
    other = Scope(platform="discord", community="g1", channel="c2")
    elsewhere = Scope(platform="telegram", community="g1", channel="c1")
    path = tmp_path / "a.db"
    latest = [f"m{i}" for i in range(35, 40)]
    async with Store(path) as store:
        memory = store.conversations
        assert await memory.history(GENERAL, 5) == []  # cached empty, then kept up to date
        for i in range(40):
            await memory.append_history(GENERAL, "user", f"m{i}", keep=5)
        await memory.append_history(other, "user", "other channel", keep=5)
        assert [c for _, c in await memory.history(GENERAL, 5)] == latest
        async with store.database.db.execute(
            "SELECT count(*) FROM history WHERE scope=?", (GENERAL.key(),)
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None and 5 <= row[0] <= 5 + HISTORY_TRIM_SLACK
        assert await memory.history(other, 5) == [("user", "other channel")]
        assert await memory.history(elsewhere, 5) == []
    async with Store(path) as store:  # a fresh process reads the same memory back
        memory = store.conversations
        assert [c for _, c in await memory.history(GENERAL, 5)] == latest
        assert await memory.clear_history(GENERAL) == row[0]
        assert await memory.history(GENERAL, 5) == []
        assert await memory.history(other, 5) == [("user", "other channel")]


async def test_concurrent_writers_never_interleave(store: Store) -> None:
    scopes = [Scope(platform="p", community="c", channel=str(i)) for i in range(20)]
    await asyncio.gather(*(
        store.alignment.bind(s, "channel", MOD, profile="kids") for s in scopes
    ), *(store.conversations.append_history(s, "user", "x", keep=3) for s in scopes))
    assert len(await store.alignment.audit_log("p", "c", limit=100)) == 20
    for s in scopes:
        assert (await store.alignment.bindings_for(s))["channel"].profile == "kids"


WRITER = textwrap.dedent("""
    import asyncio, os, sys
    from bot.messages import Scope
    from bot.store import Actor, Store

    async def main() -> None:
        store = Store(sys.argv[1])
        await store.open()
        scope = Scope(platform="p", community="c", channel="x")
        for i in range(1000000):
            await store.conversations.append_history(scope, "user", f"m{i}", keep=100000)
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
        scope = Scope(platform="p", community="c", channel="x")
        rows = await store.conversations.history(scope, 1_000_000)
    # At least everything before "ready" was committed, and nothing is torn.
    assert len(rows) >= 51
    assert [c for _, c in rows] == [f"m{i}" for i in range(len(rows))]


async def test_alignment_changes_are_fsynced_and_memory_is_not(store: Store) -> None:
    async def synchronous() -> int:
        async with store.database.db.execute("PRAGMA synchronous") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    exchange = [("user", "hi"), ("assistant", "hello")]
    assert await synchronous() == 2  # FULL
    await store.conversations.append_exchange(GENERAL, exchange, keep=10)
    assert await synchronous() == 1  # NORMAL
    await store.alignment.bind(GENERAL, "channel", MOD, profile="kids")
    assert await synchronous() == 2
    assert await store.conversations.history(GENERAL, 10) == exchange


async def test_a_write_cancelled_mid_transaction_leaves_the_store_usable(store: Store) -> None:
    memory, alignment = store.conversations, store.alignment
    await memory.append_history(GENERAL, "user", "warm-up", keep=10)
    for steps in range(1, 6):  # cancel at different points of the transaction
        task = asyncio.create_task(memory.append_history(GENERAL, "user", "hi", keep=10))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await alignment.bind(GENERAL, "channel", MOD, profile=f"p{steps}")
        assert (await alignment.bindings_for(GENERAL))["channel"].profile == f"p{steps}"
    assert not store.database.db.in_transaction


async def test_a_bind_cancelled_mid_transaction_changes_nothing_half_way(store: Store) -> None:
    alignment = store.alignment

    async def audited_binds() -> int:
        log = await alignment.audit_log("discord", "g1", limit=100)
        return sum(entry.new == "profile 'kids'" for entry in log)

    for steps in range(1, 12):  # cancel at different points of the transaction
        before = await audited_binds()
        task = asyncio.create_task(alignment.bind(GENERAL, "channel", MOD, profile="kids"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        bound = "channel" in await alignment.bindings_for(GENERAL)
        # The binding and its audit row land together, or neither does.
        assert await audited_binds() - before == int(bound)
        await alignment.bind(GENERAL, "channel", MOD)  # reset
    assert not store.database.db.in_transaction
    await store.conversations.append_history(GENERAL, "user", "hi", keep=5)
    assert await store.conversations.history(GENERAL, 5) == [("user", "hi")]


async def test_a_database_locked_by_another_program_is_a_clear_answer_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cabot.db"
    app = App(make_settings(tmp_path), backend=FakeBackend("An answer."),
              store=Store(path, busy_timeout=0.05))
    chat = RecordingAdapter()
    await app.start([chat])
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        await app.router.handle(chat, message("/profile use kids", moderator=True))
        await app.router.handle(chat, message("hello"))
        other.execute("ROLLBACK")
        assert "is busy (another program is writing to it), so nothing was changed" in \
            chat.texts()[0]
        assert chat.texts()[1] == "An answer.", "the reply is still shown"
        scope = Scope(platform="test", community="guild", channel="general")
        assert await app.store.alignment.bindings_for(scope) == {}
        await app.router.handle(chat, message("/profile use kids", moderator=True))
        assert "now uses profile 'kids'" in chat.texts()[-1]
    finally:
        other.close()
        await app.stop()


async def test_a_place_read_afresh_with_rows_past_its_bound_is_trimmed_on_its_next_append(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    async with Store(path) as store:
        for i in range(50):
            await store.conversations.append_history(GENERAL, "user", f"m{i}", keep=60)
    async with Store(path) as store:  # a new process: how many rows it has is not known
        memory = store.conversations
        assert [c for _, c in await memory.history(GENERAL, 40)] == [
            f"m{i}" for i in range(10, 50)]
        await memory.append_history(GENERAL, "user", "new", keep=40)
        rows = await store.database.db.execute_fetchall(
            "SELECT COUNT(*) FROM history WHERE scope=?", (GENERAL.key(),))
        assert next(iter(rows))[0] == 40
        assert [c for _, c in await memory.history(GENERAL, 40)] == [
            *(f"m{i}" for i in range(11, 50)), "new"]


async def test_memory_not_cached_is_one_query_and_the_next_append_one_insert(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.db"
    async with Store(path) as store:
        for i in range(20):
            await store.conversations.append_exchange(
                GENERAL, [("user", f"q{i}"), ("assistant", f"a{i}")], keep=40)
    async with Store(path) as store:  # a new process: nothing in RAM
        statements: list[str] = []
        await store.database.db.set_trace_callback(statements.append)
        memory = store.conversations
        assert len(await memory.history(GENERAL, 40)) == 40
        assert len(statements) == 1
        # It knows how many rows the channel has, so no trimming on this append.
        await memory.append_exchange(GENERAL, [("user", "q"), ("assistant", "a")], keep=40)
        writes = [sql for sql in statements[1:] if not sql.startswith("PRAGMA")]
        assert len(writes) == 1 and writes[0].startswith("INSERT")
        ran = len(statements)
        assert (await memory.history(GENERAL, 40))[-2:] == [("user", "q"), ("assistant", "a")]
        assert len(statements) == ran
