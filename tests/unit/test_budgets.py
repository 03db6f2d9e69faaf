"""Daily token budgets: counted from what the model generated, over a rolling day, stored.

Time is a fake wall clock shared by the store and the budgets, so a day passes at once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.budgets import DAY, Budgets, DailyLimits, effective, frees_at, in_words
from bot.messages import Scope
from bot.store import Store
from bot.store.usage import PRUNE_EVERY, PRUNE_SQL, Spent
from tests.helpers.apps import make_settings
from tests.helpers.clock import FakeClock
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")
REPLY = "one two three four five six seven eight"  # 10 pieces of 4 characters


def test_the_lower_limit_wins_and_zero_means_unlimited() -> None:
    assert effective(0, None) == 0 and effective(500, None) == 500
    assert effective(0, 300) == 300 and effective(500, 300) == 300 and effective(200, 300) == 200


def test_a_spent_budget_frees_up_as_its_oldest_usage_ages_out() -> None:
    spent = [Spent(100.0, 40), Spent(200.0, 40), Spent(300.0, 40)]
    assert frees_at(spent, 200) is None  # 120 < 200: not spent
    assert frees_at(spent, 120) == 100.0 + DAY  # the first row ageing out is enough
    assert frees_at(spent, 50) == 200.0 + DAY  # two rows must go
    assert in_words(3 * 3600 + 12 * 60) == "3 h 12 min" and in_words(30) == "about a minute"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[App, RecordingAdapter, FakeClock]]:
    clock = FakeClock(start=1_000_000.0)
    app = App(make_settings(tmp_path, user_daily_tokens=25, community_daily_tokens=1000),
              backend=FakeBackend(REPLY), store=Store(tmp_path / "cabot.db", clock=clock))
    chat = RecordingAdapter()
    await app.start([chat])
    yield app, chat, clock
    await app.stop()


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> list[str]:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    return [shown.text for shown in chat.shown[before:]]


async def test_a_member_over_budget_is_told_once_when_it_frees_up_then_answered_again(
    world: tuple[App, RecordingAdapter, FakeClock],
) -> None:
    app, chat, clock = world
    for _ in range(3):  # 10 tokens each: 30 of 25 spent by the third (it started within)
        assert await say(app, chat, "hi", author="max") == [REPLY]
        clock.advance(600)
    refused = await say(app, chat, "hi", author="max")
    assert len(refused) == 1 and chat.shown[-1].ephemeral
    assert refused[0].startswith("You've used your daily 25 tokens (counted over the last "
                                 "24 hours); I'll answer you again in 23 h 30 min")
    assert await say(app, chat, "hi again", author="max") == [], "told once, then quiet"
    assert await say(app, chat, "hi", author="ada") == [REPLY], "others are answered"

    me = "\n".join(await say(app, chat, "/me", author="max"))
    assert "0 of 25 tokens left for you (every community)" in me
    assert "960 of 1,000 tokens left for this whole community" in me
    assert "You'll be answered again in 23 h 30 min." in me

    clock.advance(DAY - 3 * 600 + 1)  # the first reply's tokens age out
    assert await say(app, chat, "hi", author="max") == [REPLY]


async def test_usage_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock(start=1_000_000.0)
    for _ in range(2):
        store = Store(tmp_path / "cabot.db", clock=clock)
        async with store:
            budgets = Budgets(store.usage, DailyLimits(user=15), clock=clock)
            hello = message("hi", author="max")
            await budgets.record(hello, 10)
        clock.advance(60)
    async with Store(tmp_path / "cabot.db", clock=clock) as store:
        budgets = Budgets(store.usage, DailyLimits(user=15), clock=clock)
        verdict = await budgets.check(message("hi", author="max"))
        assert not verdict.allowed and verdict.notice is not None
        state = await budgets.state(GENERAL, "max")
        assert state.left == 0 and state.limits[0].used == 20


async def test_community_moderators_set_the_communitys_budgets_within_the_operators(
    world: tuple[App, RecordingAdapter, FakeClock],
) -> None:
    app, chat, _ = world
    refused = await say(app, chat, "/budget user 15", moderator=True)
    assert refused[0].startswith("Only community moderators")
    too_much = await say(app, chat, "/budget community 5k", community_moderator=True)
    assert "allows at most 1,000 tokens per community a day" in too_much[0]
    done = await say(app, chat, "/budget community 15", community_moderator=True, author="serena")
    assert done == ["The whole community may now have 15 tokens generated per 24 hours here."]
    assert await say(app, chat, "hi", author="max") == [REPLY]
    assert await say(app, chat, "hi", author="bob") == [REPLY]  # 20 of 15: it started within
    over = await say(app, chat, "hi", author="ada")
    assert over[0].startswith("This community has used its daily 15 tokens")
    shown = "\n".join(await say(app, chat, "/budget"))
    assert "each member: 25 tokens" in shown and "the whole community: 15 tokens (set by" in shown
    assert "Used here: 20 tokens." in shown
    assert await say(app, chat, "/budget community 0", community_moderator=True) == [
        "Dropped this community's own community budget: the whole community now has "
        "1,000 tokens a day (the operator's limit)."]
    assert "not a number of tokens" in (await say(app, chat, "/budget user lots",
                                                  community_moderator=True))[0]
    actions = [(e.actor_name, e.action, e.old, e.new)
               for e in await app.store.alignment.audit_log("test", "guild")]
    assert ("serena", "community daily tokens", None, "15") in actions
    assert ("user", "community daily tokens", "15", None) in actions


async def _rows(store: Store) -> list[tuple[str, float]]:
    rows = await store.database.db.execute_fetchall(
        "SELECT user_id, at FROM token_usage ORDER BY id")
    return [(str(user), float(at)) for user, at in rows]


async def test_usage_older_than_its_window_is_pruned_and_the_window_kept(
    tmp_path: Path,
) -> None:
    clock = FakeClock(start=1_000_000.0)
    async with Store(tmp_path / "cabot.db", clock=clock) as store:
        await store.usage.record("test", "guild", "first", 5, keep=DAY)  # prunes nothing
        for index in range(PRUNE_EVERY - 1):
            clock.advance(60)
            await store.usage.record("test", "guild", f"m{index}", 5, keep=DAY)
        clock.advance(DAY - 60 * (PRUNE_EVERY - 10) + 30)  # the first ten are over a day old
        await store.usage.record("test", "guild", "late", 5, keep=DAY)  # the next prune
        kept = await _rows(store)
        assert [user for user, _ in kept[:2]] == ["m9", "m10"]
        assert kept[-1][0] == "late" and len(kept) == PRUNE_EVERY + 1 - 10
        assert all(at >= clock() - DAY for _, at in kept)
        spent = await store.usage.spent("test", clock() - DAY, community="guild")
        assert sum(s.tokens for s in spent) == 5 * len(kept)

        clock.advance(2 * DAY)  # every row is old now, and the next prune takes them all
        for index in range(PRUNE_EVERY):
            await store.usage.record("test", "guild", f"n{index}", 5, keep=1.0)
        assert [user for user, _ in await _rows(store)] == [
            f"n{index}" for index in range(PRUNE_EVERY)]


async def test_pruning_usage_reads_only_the_rows_it_deletes(tmp_path: Path) -> None:
    async with Store(tmp_path / "cabot.db"):
        pass  # the schema

    def steps_to_prune(in_window: int) -> int:
        """SQLite's virtual-machine steps for a prune of 100 old rows before ``in_window``
        rows of the window (a count, not a timing: the same on every machine)."""
        db = sqlite3.connect(tmp_path / "cabot.db", isolation_level=None)
        try:
            db.execute("DELETE FROM token_usage")
            db.executemany("INSERT INTO token_usage (platform, community, user_id, at, "
                           "tokens) VALUES ('test', 'guild', 'u', ?, 1)",
                           [(float(at),) for at in range(100 + in_window)])
            steps = [0]

            def step() -> int:
                steps[0] += 1
                return 0

            db.set_progress_handler(step, 1)
            db.execute(PRUNE_SQL, (100.0,))
            db.set_progress_handler(None, 1)
            assert db.execute("SELECT min(at), count(*) FROM token_usage").fetchone() == (
                100.0, in_window)
            return steps[0]
        finally:
            db.close()

    assert steps_to_prune(10_000) == steps_to_prune(100)
