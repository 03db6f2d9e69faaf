"""Alignment as the places grow: one query for a place not cached, one plan for every place
with the same stack, and each change seen by the next message where it was made, however
many places the caches hold."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.store.alignment
import bot.store.alignment_index
from bot.app import App
from bot.messages import IncomingMessage, Scope
from bot.resolution import ProfileResolver
from bot.store import Actor, Store
from profiles import load_builtin_library
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

MOD = Actor(id="1", name="mod")


def place(channel: int, community: int = 0, thread: str | None = None) -> Scope:
    return Scope(platform="test", community=f"guild-{community}", channel=f"c{channel}",
                 thread=thread)


def resolver_on(store: Store) -> ProfileResolver:
    return ProfileResolver(store.alignment, load_builtin_library(), "default")


async def statements_of(store: Store) -> list[str]:
    """Every SQL statement the store runs from now on."""
    statements: list[str] = []
    await store.database.db.set_trace_callback(statements.append)
    return statements


async def test_a_place_not_cached_costs_one_query_and_a_cached_one_none(store: Store) -> None:
    alignment = store.alignment
    await alignment.bind(place(1), "community", MOD, profile="researcher")
    await alignment.bind(place(1, thread="t"), "thread", MOD, profile="storyteller")
    await alignment.lock("test", "guild-0", ("concise",), MOD)
    await alignment.save_custom_layer(
        "test", "guild-0", "pirate", 'name = "pirate"\ndescription = "Arr."\n', MOD)
    resolver = resolver_on(store)
    statements = await statements_of(store)
    first = await resolver.resolve(place(1, thread="t"))
    assert len(statements) == 1
    assert first.profile == "storyteller" and "concise" in first.plan.layers
    assert "pirate" in first.library.layers
    assert await resolver.resolve(place(1, thread="t")) is first
    assert len(statements) == 1
    assert (await resolver.resolve(place(2))).profile == "researcher"
    assert len(statements) == 2


async def test_one_read_of_a_place_gives_what_the_separate_reads_give(store: Store) -> None:
    alignment = store.alignment
    thread = place(1, thread="t")
    await alignment.bind(thread, "community", MOD, profile="researcher")
    await alignment.bind(thread, "channel", MOD, layers=("base", "concise"))
    await alignment.bind(thread, "thread", MOD, profile="kids")
    await alignment.bind(place(2), "channel", MOD, profile="kids")  # another channel
    await alignment.bind(place(1, community=1), "channel", MOD, profile="kids")  # elsewhere
    await alignment.lock("test", "guild-0", ("no-links", "concise"), MOD)
    for name in ("zebra", "aardvark"):
        await alignment.save_custom_layer(
            "test", "guild-0", name, f'name = "{name}"\ndescription = "x"\n', MOD)
        await alignment.save_custom_profile("test", "guild-0", f"p-{name}", ("base", name),
                                            "mine", MOD)
    for scope in (thread, place(1), place(3), place(1, community=1)):
        stored = await alignment.place_alignment(scope)
        community = stored.community
        assert stored.bindings == await alignment.bindings_for(scope)
        assert list(stored.bindings) == list(await alignment.bindings_for(scope))
        assert list(community.locks) == await alignment.locks("test", scope.community)
        assert list(community.layers) == await alignment.custom_layers("test", scope.community)
        assert list(community.profiles) == await alignment.custom_profiles(
            "test", scope.community)
    assert set((await alignment.place_alignment(thread)).bindings) == {
        "community", "channel", "thread"}


async def test_places_with_the_same_stack_share_one_plan(store: Store) -> None:
    for channel in range(12):
        await store.alignment.bind(place(channel, channel % 4), "channel", MOD, profile="kids")
    resolver = resolver_on(store)
    kids = {id((await resolver.resolve(place(c, c % 4))).plan) for c in range(12)}
    default = {id((await resolver.resolve(place(99, c))).plan) for c in range(4)}
    assert len(kids) == 1 and len(default) == 1 and kids != default


async def test_a_change_in_one_community_keeps_what_is_cached_for_the_others(
    store: Store,
) -> None:
    resolver = resolver_on(store)
    here, elsewhere = await resolver.resolve(place(1)), await resolver.resolve(place(1, 1))
    library = await resolver.library_for("test", "guild-1")
    await store.alignment.bind(place(1), "channel", MOD, profile="kids")
    statements = await statements_of(store)
    assert await resolver.resolve(place(1, 1)) is elsewhere
    assert await resolver.library_for("test", "guild-1") is library
    assert statements == []
    changed = await resolver.resolve(place(1))
    assert changed is not here and changed.profile == "kids"


async def test_past_its_bound_the_change_record_starts_afresh_and_serves_nothing_stale(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.store.alignment, "CHANGES_KEPT", 2)
    resolver = resolver_on(store)
    untouched = await resolver.resolve(place(1, 9))
    for community in range(3):
        await resolver.resolve(place(1, community))
        await store.alignment.bind(place(1, community), "channel", MOD, profile="kids")
    for community in range(3):
        assert (await resolver.resolve(place(1, community))).profile == "kids"
    again = await resolver.resolve(place(1, 9))  # read again, to be safe
    assert again is not untouched and again.profile == "default"


async def test_a_moved_community_is_resolved_afresh_under_both_ids(store: Store) -> None:
    resolver = resolver_on(store)
    old, new = place(1, 1), place(1, 2)
    await store.alignment.bind(old, "channel", MOD, profile="kids")
    assert (await resolver.resolve(old)).profile == "kids"
    assert (await resolver.resolve(new)).profile == "default"
    assert await store.move_community("test", "guild-1", "guild-2", MOD)
    assert (await resolver.resolve(old)).profile == "default"
    assert (await resolver.resolve(new)).profile == "kids"


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(lambda _request: "ok")


async def test_a_change_is_seen_by_the_next_message_there_with_every_place_cached(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    # 400 places in 100 communities, each with its alignment and memory cached.
    for channel in range(400):
        await app.router.handle(chat, message("hello", channel=f"c{channel}",
                                              community=f"guild-{channel % 100}"))

    def here(text: str, moderator: bool = False) -> IncomingMessage:
        return message(text, channel="c7", community="guild-7", moderator=moderator)

    async def system_prompt_after(text: str) -> str:
        await app.router.handle(chat, here(text))
        return backend.requests[-1].messages[0].content

    kids = app.library.layers["family-friendly"].prompt.strip()
    assert kids not in await system_prompt_after("before")
    await app.router.handle(chat, here("/profile use kids", moderator=True))
    assert kids in await system_prompt_after("after the switch")
    # A lock set from another channel of the community binds here from the next message.
    formal = app.library.layers["formal"].prompt.strip()
    await app.router.handle(chat, message("/profile lock formal", channel="c107",
                                          community="guild-7", community_moderator=True))
    assert chat.texts()[-1].startswith("Locked formal for the whole community")
    assert formal in await system_prompt_after("after the lock")
    await app.router.handle(chat, here("/profile reset", moderator=True))
    prompt = await system_prompt_after("after the reset")
    assert kids not in prompt and formal in prompt
    # Elsewhere nothing changed.
    await app.router.handle(chat, message("elsewhere", channel="c8", community="guild-8"))
    assert formal not in backend.requests[-1].messages[0].content


async def reopened(store: Store, tmp_path: Path) -> Store:
    """The same file opened again, as after a restart (the caller closes it)."""
    await store.database.writes.drain()
    again = Store(tmp_path / "cabot.db")
    await again.open()
    return again


async def test_bindings_kept_in_ram_answer_a_new_place_without_a_query(
    store: Store, tmp_path: Path
) -> None:
    for community in range(3):
        await store.alignment.bind(place(1, community), "channel", MOD, profile="kids")
    await store.alignment.bind(place(2, 1), "community", MOD, profile="researcher")
    await store.alignment.bind(place(5, 2, thread="t"), "thread", MOD, profile="storyteller")
    again = await reopened(store, tmp_path)
    try:
        assert again.alignment.bindings_kept == 5
        resolver = resolver_on(again)
        statements = await statements_of(again)
        assert (await resolver.resolve(place(1, 2))).profile == "kids"
        assert (await resolver.resolve(place(9, 1))).profile == "researcher"
        assert (await resolver.resolve(place(1, 1))).profile == "kids"
        assert (await resolver.resolve(place(5, 2, thread="t"))).profile == "storyteller"
        assert (await resolver.resolve(place(5, 2))).profile == "default"
        assert (await resolver.resolve(place(1, 7))).profile == "default"
        assert statements == []
    finally:
        await again.close()


async def test_a_community_with_rows_of_its_own_still_reads_them(
    store: Store, tmp_path: Path
) -> None:
    await store.alignment.lock("test", "guild-3", ("concise",), MOD)
    again = await reopened(store, tmp_path)
    try:
        resolver = resolver_on(again)
        statements = await statements_of(again)
        assert "concise" in (await resolver.resolve(place(1, 3))).plan.layers
        assert len(statements) == 1
        assert "concise" not in (await resolver.resolve(place(1, 4))).plan.layers
        assert len(statements) == 1
    finally:
        await again.close()


async def every_place_as_sqlite_has_it(store: Store, tmp_path: Path,
                                       scopes: list[Scope]) -> list[object]:
    """What a store that keeps no binding in RAM reads for ``scopes``."""
    await store.database.writes.drain()
    reader = Store(tmp_path / "cabot.db")
    await reader.database.open()  # no load: every place is read from the file
    try:
        assert reader.alignment.bindings_kept == 0
        return [await reader.alignment.place_alignment(scope) for scope in scopes]
    finally:
        await reader.close()


async def test_what_ram_keeps_stays_what_the_file_holds_through_every_kind_of_change(
    store: Store, tmp_path: Path
) -> None:
    alignment = store.alignment
    scopes = [place(c, g, thread) for c in (1, 2) for g in (1, 2, 3) for thread in (None, "t")]

    async def same() -> None:
        assert [await alignment.place_alignment(s) for s in scopes] == (
            await every_place_as_sqlite_has_it(store, tmp_path, scopes))
        for scope in scopes:
            assert await alignment.bindings_for(scope) == (
                await alignment.place_alignment(scope)).bindings

    await alignment.bind(place(1, 1), "channel", MOD, profile="kids")
    await alignment.bind(place(1, 1, "t"), "thread", MOD, layers=("base", "concise"))
    await alignment.bind(place(2, 1), "community", MOD, profile="researcher")
    assert alignment.bindings_kept == 3
    await same()
    await alignment.bind(place(1, 1), "channel", MOD, profile="storyteller")  # replaced
    await alignment.bind(place(1, 1, "t"), "thread", MOD)  # reset
    await alignment.lock("test", "guild-2", ("concise",), MOD)
    await alignment.save_custom_layer(
        "test", "guild-3", "pirate", 'name = "pirate"\ndescription = "Arr."\n', MOD)
    await same()
    first = await store.versions.place_version(place(1, 1), "channel", 1)
    assert first is not None
    await store.versions.restore_place(place(1, 1), "channel", first, MOD)  # kids again
    await alignment.unlock("test", "guild-2", ("concise",), MOD)
    await same()
    assert await store.move_community("test", "guild-1", "guild-2", MOD)
    await same()
    await alignment.bind(place(2, 2), "channel", MOD, profile="kids")  # known again
    await same()
    assert alignment.bindings_kept == 3


async def test_past_its_bound_every_place_is_read_from_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.store.alignment_index, "BINDINGS_KEPT", 2)
    async with Store(tmp_path / "cabot.db") as store:
        for channel in range(3):
            await store.alignment.bind(place(channel), "channel", MOD, profile="kids")
        assert store.alignment.bindings_kept == 0  # the third was one too many
        resolver = resolver_on(store)
        assert all([(await resolver.resolve(place(c))).profile == "kids" for c in range(3)])
    async with Store(tmp_path / "cabot.db") as store:
        assert store.alignment.bindings_kept == 0
        statements = await statements_of(store)
        assert (await resolver_on(store).resolve(place(2))).profile == "kids"
        assert len(statements) == 1


async def test_a_change_whose_rows_cannot_be_read_back_still_commits_and_is_seen(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.store.alignment_index, "_COMMUNITY_SQL", "SELECT FROM nowhere")
    await store.alignment.bind(place(1), "channel", MOD, profile="kids")
    assert (await resolver_on(store).resolve(place(1))).profile == "kids"
    assert (await store.alignment.bindings_for(place(1)))["channel"].profile == "kids"
