"""Daily token budgets: counted from what the model generated, over a rolling day, stored.

Time is a fake wall clock shared by the store and the budgets, so a day passes at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.budgets import DAY, Budgets, DailyLimits, effective, frees_at, in_words
from bot.messages import Scope
from bot.store import Store
from bot.store.usage import Spent
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
