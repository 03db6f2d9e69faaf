"""Budgets and personal picks in a store with many places: a community that set no budget
and a member who picked nothing cost no query, and what was set is read however the store
got there (set now, set before a restart, moved in from another community id)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.store.reads
from bot.store import Actor, Store
from bot.store.usage import CommunityBudgets

MOD = Actor(id="1", name="mod")
MEMBER = Actor(id="7", name="member")


async def statements_of(store: Store) -> list[str]:
    statements: list[str] = []
    await store.database.db.set_trace_callback(statements.append)
    return statements


async def test_what_nobody_set_costs_no_query_and_what_was_set_is_read(tmp_path: Path) -> None:
    async with Store(tmp_path / "cabot.db") as store:
        await store.usage.set_budget("test", "g1", "user", 500, MOD)
        await store.members.choose("test", "g1", MEMBER, ("pirate",))
        assert (await store.usage.budgets("test", "g1")).user == 500
        assert await store.members.chosen("test", "g1", MEMBER.id) == ("pirate",)
    async with Store(tmp_path / "cabot.db") as store:
        statements = await statements_of(store)
        assert await store.usage.budgets("test", "g2") == CommunityBudgets()
        assert store.usage.budgets_read("test", "g2") is None
        assert await store.members.chosen("test", "g1", "8") == ()
        assert store.members.chosen_read("test", "g2", MEMBER.id) is None
        assert statements == []
        assert (await store.usage.budgets("test", "g1")).user == 500
        assert await store.members.chosen("test", "g1", MEMBER.id) == ("pirate",)
        assert len(statements) == 2
        await store.usage.set_budget("test", "g2", "community", 900, MOD)
        await store.members.choose("test", "g2", MEMBER, ("formal",))
        store.members.forget_cached("test")  # RAM keeps no pick: each is read
        assert (await store.usage.budgets("test", "g2")).community == 900
        assert await store.members.chosen("test", "g2", MEMBER.id) == ("formal",)


async def test_a_moved_community_keeps_its_budgets_and_picks(store: Store) -> None:
    await store.usage.set_budget("test", "old", "user", 300, MOD)
    await store.members.choose("test", "old", MEMBER, ("pirate",))
    assert await store.move_community("test", "old", "new", MOD)
    assert (await store.usage.budgets("test", "new")).user == 300
    assert await store.members.chosen("test", "new", MEMBER.id) == ("pirate",)
    assert await store.usage.budgets("test", "old") == CommunityBudgets()
    assert await store.members.chosen("test", "old", MEMBER.id) == ()


async def test_past_its_bound_every_key_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.store.reads, "KEYS_KEPT", 1)
    async with Store(tmp_path / "cabot.db") as store:
        for community in ("g1", "g2"):
            await store.usage.set_budget("test", community, "user", 100, MOD)
    async with Store(tmp_path / "cabot.db") as store:
        statements = await statements_of(store)
        assert await store.usage.budgets("test", "g3") == CommunityBudgets()
        assert len(statements) == 1  # two communities are more than it keeps: read
        assert (await store.usage.budgets("test", "g2")).user == 100
