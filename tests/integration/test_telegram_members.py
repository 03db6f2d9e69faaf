"""Telegram end to end: personal layers, budgets, who said what, and what is remembered.

The real python-telegram-bot client against the loopback fake Bot API (``running`` of
``test_telegram``); every test asserts on what people see in their chats, and on the
prompt the model got.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_telegram import GROUP
from tests.integration.test_telegram import group_scope, running

ITALIAN = "Rispondi sempre in italiano."
BOT = "@cabot_test_bot"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # see test_telegram


async def test_personal_layers_in_a_group(tmp_path: Path) -> None:
    backend = FakeBackend("Ciao!")
    async with running(tmp_path, backend) as bots:
        await bots.say(GROUP, bots.bob, "/profile allow italian")
        refused = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.carol, "/profile allow italian humor")
        allowed = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, "/me use italian")
        picked = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, f"{BOT} hello")
        await bots.say(GROUP, bots.alice, f"{BOT} hello")
        await bots.say(GROUP, bots.bob, "/profile show")
        shown = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, "/me reset")
        audit = await bots.app.store.alignment.audit_log("telegram", str(GROUP))

    assert refused.startswith("Only moderators")
    assert "Members may now pick italian, humor" in allowed
    assert "now add italian" in picked
    bob_prompt, alice_prompt = (r.messages[0].content for r in backend.requests)
    assert ITALIAN in bob_prompt and ITALIAN not in alice_prompt
    assert "italian (built-in) [yours: only your replies]" in shown
    assert [(e.actor_name, e.action) for e in audit][:3] == [
        ("Bob", "personal layers"), ("Bob", "personal layers"),
        ("Carol", "allow personal layers channel")]


async def test_a_member_over_budget_is_told_once(tmp_path: Path) -> None:
    backend = FakeBackend("one two three four five six seven eight")  # 10 pieces
    async with running(tmp_path, backend) as bots:
        await bots.say(GROUP, bots.bob, "/budget user 15")
        refused = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.carol, "/budget user 15")
        for text in ("one", "two", "three", "four"):
            await bots.say(GROUP, bots.bob, f"{BOT} {text}")
        await bots.say(GROUP, bots.alice, f"{BOT} five")
        await bots.say(GROUP, bots.bob, "/me")
        left = bots.replies(GROUP)[-1]
        replies = bots.replies(GROUP)

    assert refused.startswith("Only community moderators")
    assert [last_user_text(r) for r in backend.requests] == ["Bob: one", "Bob: two",
                                                             "Alice: five"]
    notices = [text for text in replies if text.startswith("You've used your daily 15")]
    assert len(notices) == 1 and re.search(r"answer you again in 2[34] h", notices[0])
    assert "0 of 15 tokens left for you in this community" in left


async def test_the_model_knows_who_said_what_and_what_a_reply_answers(tmp_path: Path) -> None:
    backend = FakeBackend(lambda r: f"echo {last_user_text(r)[:30]}")
    async with running(tmp_path, backend, core={"history_messages": 40}) as bots:
        bob_said = await bots.say(GROUP, bots.bob, "I think herons are the best birds")
        await bots.say(GROUP, bots.alice, f"{BOT} do you agree?",
                       reply_to=bob_said["message"]["message_id"])
        await bots.say(bots.alice["id"], bots.alice, "and in private?")
        await bots.say(GROUP, bots.bob, "/memory")
        memory = bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, "/forget")
        forgot = bots.replies(GROUP)[-1]
        turns = await bots.app.store.summaries.recent(group_scope(), 10)

    assert last_user_text(backend.requests[0]) == (
        'Alice (replying to Bob, who said "I think herons are the best birds"): do you agree?')
    assert last_user_text(backend.requests[1]) == "and in private?"
    assert "remembers 2 messages word for word" in memory and "No summary yet" in memory
    assert forgot.startswith("Forgot this channel's conversation (2 messages)")
    assert turns == []
