"""A place's memory in RAM: its turns and summary read in one query, then served without
SQL, and every write (append, fold, forget, a community move) seen by the next read."""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.messages import Scope
from bot.store import Actor, Store
from tests.helpers.recording import RecordingAdapter, message

MOD = Actor(id="1", name="mod")
PLACE = Scope(platform="test", community="guild", channel="general")


async def statements_of(store: Store) -> list[str]:
    """Every SQL statement the store runs from now on."""
    statements: list[str] = []
    await store.database.db.set_trace_callback(statements.append)
    return statements


async def filled(path: Path) -> None:
    """A place with ten remembered turns and a summary of older ones, left on disk."""
    async with Store(path) as store:
        for i in range(5):
            await store.conversations.append_exchange(
                PLACE, [("user", f"q{i}"), ("assistant", f"a{i}")], keep=40,
                authors=("ada", None))
        turns = await store.summaries.recent(PLACE, 40)
        assert await store.summaries.fold(PLACE, "They said hello.", turns[:2])


async def test_summary_and_turns_are_one_query_then_none(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    await filled(path)
    async with Store(path) as store:  # a new process: nothing in RAM
        statements = await statements_of(store)
        summaries = store.summaries
        await store.conversations.history(PLACE, 40)
        summary = await summaries.summary(PLACE)
        turns = await summaries.recent(PLACE, 40)
        assert len(statements) == 1
        assert summary is not None and summary.text == "They said hello." and summary.turns == 2
        assert [(t.role, t.content, t.author) for t in turns[:2]] == [
            ("user", "q1", "ada"), ("assistant", "a1", None)]
    async with Store(path) as store:
        statements = await statements_of(store)
        await store.summaries.summary(PLACE)
        await store.summaries.recent(PLACE, 40)
        await store.summaries.summary(PLACE)
        # Before any turns were asked for, a summary is read alone; once the number a
        # reply wants is known, a summary read brings that many turns with it.
        assert len(statements) == 2
        other = PLACE.model_copy(update={"channel": "other"})
        await store.summaries.summary(other)
        await store.conversations.history(other, 40)
        assert len(statements) == 3


async def test_turns_kept_in_ram_carry_the_ids_sqlite_gave_them(store: Store) -> None:
    await store.summaries.recent(PLACE, 40)  # in RAM from now on
    for i in range(3):
        await store.conversations.append_exchange(
            PLACE, [("user", f"q{i}"), ("assistant", f"a{i}")], keep=40, authors=("bob",))
    kept = await store.summaries.recent(PLACE, 40)
    rows = await store.database.db.execute_fetchall(
        "SELECT id, role, content, author FROM history WHERE scope=? ORDER BY id",
        (PLACE.key(),))
    assert [(t.id, t.role, t.content, t.author) for t in kept] == [tuple(r) for r in rows]
    # So a fold of what RAM holds deletes exactly those rows.
    assert await store.summaries.fold(PLACE, "Bob asked twice.", kept[:4])
    assert [t.content for t in await store.summaries.recent(PLACE, 40)] == ["q2", "a2"]
    summary = await store.summaries.summary(PLACE)
    assert summary is not None and summary.text == "Bob asked twice."


async def test_forgetting_and_moving_are_seen_by_the_next_read(store: Store) -> None:
    await store.conversations.append_exchange(PLACE, [("user", "hi"), ("assistant", "yo")],
                                              keep=40)
    turns = await store.summaries.recent(PLACE, 40)
    await store.summaries.fold(PLACE, "A greeting.", turns)
    assert await store.summaries.summary(PLACE) is not None
    assert await store.conversations.clear_history(PLACE) == 0
    assert await store.summaries.summary(PLACE) is None
    await store.conversations.append_exchange(PLACE, [("user", "again")], keep=40)
    moved = PLACE.model_copy(update={"community": "guild-2"})
    assert await store.conversations.history(moved, 40) == []
    assert await store.move_community("test", "guild", "guild-2", MOD)
    assert await store.conversations.history(moved, 40) == [("user", "again")]
    assert await store.conversations.history(PLACE, 40) == []


async def test_reply_modes_are_kept_and_a_change_seen_at_once(store: Store) -> None:
    conversations = store.conversations
    statements = await statements_of(store)
    assert await conversations.reply_mode(PLACE) is None
    assert await conversations.reply_mode(PLACE) is None
    assert len(statements) == 1
    await conversations.set_reply_mode(PLACE, "always", MOD)
    assert await conversations.reply_mode(PLACE) == "always"
    moved = PLACE.model_copy(update={"community": "guild-2"})
    assert await conversations.reply_mode(moved) is None
    assert await store.move_community("test", "guild", "guild-2", MOD)
    assert await conversations.reply_mode(moved) == "always"
    assert await conversations.reply_mode(PLACE) is None


async def test_a_reply_in_a_place_already_seen_reads_nothing_from_sqlite(
    app: App, chat: RecordingAdapter
) -> None:
    await app.router.handle(chat, message("hello"))
    statements = await statements_of(app.store)
    await app.router.handle(chat, message("hello again"))
    assert len(chat.texts()) == 2
    assert statements and not [sql for sql in statements if sql.startswith("SELECT")]


async def test_ram_holds_the_memory_of_as_many_places_as_it_is_given(tmp_path: Path) -> None:
    places = [PLACE.model_copy(update={"channel": f"c{i}"}) for i in range(3)]
    async with Store(tmp_path / "a.db", memory_places=2) as store:
        for i, place in enumerate(places):
            await store.conversations.append_exchange(
                place, [("user", f"q{i}"), ("assistant", f"a{i}")], keep=40)
        statements = await statements_of(store)
        for place in places:  # the first place's memory makes room for the third's
            await store.conversations.history(place, 40)
        assert len(statements) == 3
        assert await store.conversations.history(places[2], 40) == [
            ("user", "q2"), ("assistant", "a2")]
        assert len(statements) == 3
        # The place that made room is read again, whole.
        assert await store.conversations.history(places[0], 40) == [
            ("user", "q0"), ("assistant", "a0")]
        assert len(statements) == 4
