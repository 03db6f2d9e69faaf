"""The store's versions: each alignment change of a place, layer or profile is a numbered
snapshot committed with the change and its audit row; restoring one is a change too."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.messages import Scope
from bot.store import Actor, Store
from bot.store.connection import MIGRATIONS

ALICE, BOB = Actor("1", "alice"), Actor("2", "bob")
HERE = Scope(platform="t", community="g", channel="c")
THREAD = Scope(platform="t", community="g", channel="c", thread="th")


async def test_every_binding_change_is_a_version_with_who_and_what(store: Store) -> None:
    await store.alignment.bind(HERE, "channel", ALICE, profile="kids")
    await store.alignment.bind(HERE, "channel", BOB, layers=("base", "concise"))
    await store.alignment.bind(HERE, "channel", BOB)
    await store.alignment.bind(HERE, "channel", BOB)  # nothing left to reset: no version
    history = await store.versions.place_history(HERE, "channel")
    assert [(v.number, v.change.actor_name, v.change.action, v.describe()) for v in history] == [
        (3, "bob", "reset", "nothing of its own (inherits)"),
        (2, "bob", "set", "layers base, concise"),
        (1, "alice", "set", "profile 'kids'"),
    ]
    assert await store.versions.place_history(THREAD, "thread") == []
    assert (await store.versions.latest_place(THREAD, "thread")).number == 0


async def test_a_communitys_versions_hold_its_binding_and_its_locks(store: Store) -> None:
    await store.alignment.bind(HERE, "community", ALICE, profile="default")
    await store.alignment.lock("t", "g", ("no-links", "no-pii"), ALICE)
    await store.alignment.unlock("t", "g", ("no-links",), BOB)
    await store.alignment.unlock("t", "g", ("no-links",), BOB)  # not locked: no change
    history = await store.versions.place_history(HERE, "community")
    assert [v.describe() for v in history] == [
        "profile 'default'; locked: no-pii",
        "profile 'default'; locked: no-links, no-pii",
        "profile 'default'; locked: nothing",
    ]
    assert [v.change.action for v in history] == ["unlock", "lock", "set"]


async def test_restoring_a_version_is_a_new_audited_version(store: Store) -> None:
    await store.alignment.bind(HERE, "community", ALICE, profile="default")
    await store.alignment.lock("t", "g", ("no-pii",), ALICE)
    await store.alignment.lock("t", "g", ("no-links",), BOB)
    first = await store.versions.place_version(HERE, "community", 2)
    assert first is not None and first.locks == ("no-pii",)
    restored = await store.versions.restore_place(HERE, "community", first, BOB)
    assert restored is not None and restored.number == 4
    assert restored.change.action == "rollback to v2" and restored.locks == ("no-pii",)
    # The lock kept keeps who set it.
    assert [(lock.layer, lock.by_name) for lock in await store.alignment.locks("t", "g")] == [
        ("no-pii", "alice")]
    entry = (await store.alignment.audit_log("t", "g", limit=1))[0]
    assert (entry.actor_name, entry.action) == ("bob", "rollback community to v2")
    assert entry.old == "profile 'default'; locked: no-pii, no-links"
    assert entry.new == "profile 'default'; locked: no-pii"
    # Back to the start: nothing bound, nothing locked.
    start = await store.versions.place_version(HERE, "community", 0)
    assert start is not None
    await store.versions.restore_place(HERE, "community", start, BOB)
    assert await store.alignment.bindings_for(HERE) == {}
    assert await store.alignment.locks("t", "g") == []
    # Restoring what is already there changes nothing and records nothing.
    assert await store.versions.restore_place(HERE, "community", start, BOB) is None
    assert (await store.versions.latest_place(HERE, "community")).number == 5


async def test_restoring_bumps_the_generation_readers_cache_on(store: Store) -> None:
    await store.alignment.bind(HERE, "channel", ALICE, profile="kids")
    before = store.alignment.generation
    start = await store.versions.place_version(HERE, "channel", 0)
    assert start is not None
    await store.versions.restore_place(HERE, "channel", start, ALICE)
    assert store.alignment.generation > before
    assert store.alignment.changed_at("t", "g") == store.alignment.generation


async def test_community_layers_keep_every_version_and_deletions(store: Store) -> None:
    versions = store.versions
    assert await versions.save_layer("t", "g", "pirate", "name = 'pirate'\n#1", ALICE,
                                     "create") == 1
    assert await versions.save_layer("t", "g", "pirate", "name = 'pirate'\n#2", BOB,
                                     "edit") == 2
    assert await versions.save_layer("t", "g", "pirate", None, BOB, "delete") == 3
    assert await store.alignment.custom_layers("t", "g") == []
    history = await versions.layer_history("t", "g", "pirate")
    assert [(v.number, v.change.action, v.source) for v in history] == [
        (3, "delete", None), (2, "edit", "name = 'pirate'\n#2"),
        (1, "create", "name = 'pirate'\n#1")]
    audit = await store.alignment.audit_log("t", "g")
    assert [(e.action, e.old, e.new) for e in audit] == [
        ("delete layer", "pirate v2", None), ("edit layer", "pirate v1", "pirate v2"),
        ("create layer", None, "pirate v1")]
    # The older way of saving a layer is versioned too.
    await store.alignment.save_custom_layer("t", "g", "pirate", "name = 'pirate'\n#4", ALICE)
    assert (await versions.layer_history("t", "g", "pirate"))[0].number == 4


async def test_community_profiles_keep_every_definition(store: Store) -> None:
    await store.alignment.save_custom_profile("t", "g", "club", ("base",), "first", ALICE)
    await store.alignment.save_custom_profile("t", "g", "club", ("base", "concise"), "2nd", BOB)
    old = await store.versions.profile_version("t", "g", "club", 1)
    assert old is not None and old.layers == ("base",)
    assert await store.versions.restore_profile("t", "g", "club", old, BOB) == 3
    assert await store.alignment.custom_profiles("t", "g") == [("club", "first", ("base",))]
    history = await store.versions.profile_history("t", "g", "club")
    assert [v.change.action for v in history] == ["rollback to v1", "define", "define"]
    assert (await store.alignment.audit_log("t", "g", limit=1))[0].action == (
        "rollback profile to v1")


async def test_a_failed_change_leaves_no_version(store: Store) -> None:
    await store.alignment.bind(HERE, "channel", ALICE, profile="kids")
    await store.database.db.execute("DROP TABLE audit")  # the audit row cannot be written
    start = await store.versions.place_version(HERE, "channel", 0)
    assert start is not None
    with pytest.raises(StoreError):
        await store.versions.restore_place(HERE, "channel", start, BOB)
    assert [v.number for v in await store.versions.place_history(HERE, "channel")] == [1]
    assert (await store.alignment.bindings_for(HERE))["channel"].profile == "kids"


async def test_a_group_upgrade_moves_the_versions(store: Store) -> None:
    group = Scope(platform="telegram", community="-5", channel="-5")
    await store.alignment.bind(group, "channel", ALICE, profile="kids")
    await store.versions.save_layer("telegram", "-5", "pirate", "x", ALICE, "create")
    await store.alignment.save_custom_profile("telegram", "-5", "club", ("base",), "", ALICE)
    await store.move_community("telegram", "-5", "-1005", ALICE)
    moved = Scope(platform="telegram", community="-1005", channel="-1005")
    assert [v.describe() for v in await store.versions.place_history(moved, "channel")] == [
        "profile 'kids'"]
    assert len(await store.versions.layer_history("telegram", "-1005", "pirate")) == 1
    assert len(await store.versions.profile_history("telegram", "-1005", "club")) == 1
    assert await store.versions.place_history(group, "channel") == []


async def test_what_existed_before_history_was_kept_becomes_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(MIGRATIONS[:4], 1):
            db.executescript(f"{script}\nPRAGMA user_version = {number};")
        db.executescript("""
            INSERT INTO bindings VALUES ('t', 'g', '', '', 'kids', NULL, '1', 10.0);
            INSERT INTO bindings VALUES ('t', 'g', 'c', '', NULL, '["base"]', '2', 11.0);
            INSERT INTO locks VALUES ('t', 'g', 'no-pii', '1', 'alice', 12.0);
            INSERT INTO locks VALUES ('t', 'h', 'no-links', '2', 'bob', 13.0);
            INSERT INTO custom_layers VALUES ('t', 'g', 'pirate', 'name = "pirate"', '1', 14.0);
            INSERT INTO custom_profiles VALUES ('t', 'g', 'club', '', '["base"]', '1', 15.0);
            INSERT INTO audit (at, platform, community, channel, thread, actor_id, actor_name,
                action, old, new) VALUES (9.0, 't', 'g', '', '', '1', 'alice', 'bind', NULL, 'x');
        """)
    async with Store(path) as store:
        community = await store.versions.place_history(HERE, "community")
        assert [(v.number, v.change.actor_name, v.describe()) for v in community] == [
            (1, "alice", "profile 'kids'; locked: no-pii")]
        channel = await store.versions.place_history(HERE, "channel")
        assert [(v.change.actor_name, v.describe()) for v in channel] == [("2", "layers base")]
        other = Scope(platform="t", community="h", channel="c")
        assert [v.describe() for v in await store.versions.place_history(other, "community")] \
            == ["nothing of its own (inherits); locked: no-links"]
        assert (await store.versions.layer_history("t", "g", "pirate"))[0].source == (
            'name = "pirate"')
        assert (await store.versions.profile_history("t", "g", "club"))[0].layers == ("base",)
