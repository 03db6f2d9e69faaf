"""The Telegram adapter end to end: the real python-telegram-bot client against a fake Bot API.

Every test runs cabot's App with the Telegram adapter, talks to it as Telegram users would
(through ``FakeTelegram.post``) and asserts on what those users see in their chats.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest

from adapters.telegram import TelegramAdapter, TelegramSettings
from bot.app import App
from bot.backends.base import Backend
from bot.messages import Scope
from tests.helpers.apps import make_app, telegram_settings
from tests.helpers.clock import SkippingClock
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_telegram import (
    ANONYMOUS_ADMIN,
    CHANNEL_BOT,
    FORUM,
    GROUP,
    JSON,
    TOKEN,
    FakeTelegram,
)

SECRET = TOKEN.split(":", 1)[1]
UPDATE_LIMIT = 10.0
"""Seconds of wall time an update may take to be handled: only so a lost one fails."""


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-telegram-bot warns on every RetryAfter unless this opt-in is set, and the test
    # configuration turns warnings into errors.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


class WatchedTelegramAdapter(TelegramAdapter):
    """The Telegram adapter, waking waiters each time it has dealt with an update."""

    def __init__(self, settings: TelegramSettings, **options: Any) -> None:
        self._handled_up_to = 0
        self._handled = asyncio.Event()
        super().__init__(settings, **options)

    @property
    def last_update_id(self) -> int:
        return self._handled_up_to

    @last_update_id.setter
    def last_update_id(self, value: int) -> None:
        self._handled_up_to = value
        self._handled.set()

    async def wait_for_update(self, update_id: int) -> None:
        """Until every update up to ``update_id`` has been handed over or ignored."""
        while self._handled_up_to < update_id:
            self._handled.clear()
            await self._handled.wait()


@dataclass
class Bots:
    """A running cabot with its Telegram adapter, the fake Bot API and some people."""

    fake: FakeTelegram
    app: App
    adapter: WatchedTelegramAdapter
    backend: FakeBackend
    alice: JSON  # owner of the groups
    bob: JSON  # a plain member
    carol: JSON  # an administrator
    clock: SkippingClock | None = None

    async def settle(self) -> None:
        """Wait until every update posted so far is handled and its replies are shown."""
        async with asyncio.timeout(UPDATE_LIMIT):
            await self.adapter.wait_for_update(self.fake.last_update_id)
        await self.app.router.drain()
        await self.adapter.flush()

    async def say(self, chat_id: int, sender: JSON, text: str, **kwargs: Any) -> JSON:
        """Post a message and wait until the bot has dealt with it."""
        if self.clock is not None:
            self.clock.advance(5.0)  # people take a few seconds to write
        update = self.fake.post(chat_id, sender, text, **kwargs)
        await self.settle()
        return update

    def replies(self, chat_id: int, thread_id: int | str | None = "any") -> list[str]:
        return [m.text for m in self.fake.bot_messages(chat_id, thread_id)]

    async def binding(self, scope: Scope) -> dict[str, str | None]:
        found = await self.app.store.alignment.bindings_for(scope)
        return {level: binding.profile for level, binding in found.items()}


@asynccontextmanager
async def running(
    tmp_path: Path,
    backend: FakeBackend | None = None,
    *,
    clock: SkippingClock | None = None,
    real_backend: Backend | None = None,
    core: dict[str, Any] | None = None,
    **telegram: Any,
) -> AsyncIterator[Bots]:
    """cabot (``core`` settings) on Telegram (``telegram`` settings) against a fresh fake."""
    fake = FakeTelegram(TOKEN, clock=clock or time.monotonic)
    await fake.start()
    backend = backend if backend is not None else FakeBackend()
    app = make_app(tmp_path, real_backend or backend, **(core or {}))
    settings = telegram_settings(token=TOKEN, base_url=fake.base_url, **telegram)
    if clock is not None:
        adapter = WatchedTelegramAdapter(settings, clock=clock, sleep=clock.sleep)
    else:
        adapter = WatchedTelegramAdapter(settings)
    alice = fake.add_user(101, "Alice", "alice")
    bob = fake.add_user(102, "Bob", "bob")
    carol = fake.add_user(103, "Carol", "carol")
    fake.add_private_chat(alice)
    fake.add_private_chat(bob)
    fake.add_group(GROUP, "Readers", owner=alice, admins=(carol,))
    fake.add_group(FORUM, "Forum", owner=alice, forum=True)
    try:
        await app.start([adapter])
        yield Bots(fake, app, adapter, backend, alice, bob, carol, clock)
    finally:
        await app.stop()
        await fake.stop()


def group_scope(chat_id: int = GROUP, thread: int | None = None) -> Scope:
    return Scope(platform="telegram", community=str(chat_id), channel=str(chat_id),
                 thread=str(thread) if thread is not None else None)


# -- private chats and streaming -------------------------------------------------------


async def test_private_chat_gets_a_streamed_reply_within_the_edit_rate(tmp_path: Path) -> None:
    reply = ("Paris is the capital of France. It sits on the Seine, and it has been the "
             "country's capital for most of the last thousand years. ") * 2
    # On the wall clock: the router streams on its own clock, which App does not take.
    # A quarter second between edits keeps within Telegram's few messages a second.
    backend = FakeBackend(reply, piece_chars=8, rate=60)
    async with running(tmp_path, backend, edit_interval=0.25) as bots:
        await bots.say(bots.alice["id"], bots.alice, "What is the capital of France?")

        messages = bots.fake.bot_messages(bots.alice["id"])
        assert [m.text for m in messages] == [reply.strip()]
        shown = messages[0]
        assert len(shown.versions) >= 3, "the reply should grow by edits while it streams"
        assert all(reply.startswith(v) for v in shown.versions)
        times = [shown.sent_at, *shown.edit_times]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= 0.25 * 0.9, f"edits closer than the edit interval: {gaps}"
        assert all(c.ok for c in bots.fake.calls_to("editMessageText")), "no flood wait"
        typing = bots.fake.calls_to("sendChatAction")
        assert typing and typing[0].params["action"] == "typing"
        assert typing[0].at <= shown.sent_at
        assert last_user_text(backend.requests[0]) == "What is the capital of France?"


async def test_commands_are_registered_for_the_menu(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        menu = {command["command"]: command["description"] for command in bots.fake.commands}
        assert list(menu) == ["profile", "layer", "answer", "me", "budget", "memory", "forget",
                          "help"]
        assert "use, set, reset" in menu["profile"]
        assert menu["answer"].endswith("(admins)")
        await bots.say(bots.bob["id"], bots.bob, "/start")  # what "Start" in Telegram sends
        assert "/profile show" in bots.replies(bots.bob["id"])[0]
        assert bots.backend.requests == []


# -- groups: when cabot answers ---------------------------------------------------------


async def test_in_a_group_unaddressed_messages_are_ignored_and_mentions_answered(
    tmp_path: Path,
) -> None:
    backend = FakeBackend(lambda request: f"You said: {last_user_text(request)}")
    async with running(tmp_path, backend, clock=SkippingClock()) as bots:
        await bots.say(GROUP, bots.bob, "anyone seen the new film?")
        assert bots.replies(GROUP) == []

        asked = await bots.say(GROUP, bots.bob, "@cabot_test_bot, what is two plus two?")
        messages = bots.fake.bot_messages(GROUP)
        assert [m.text for m in messages] == ["You said: Bob: what is two plus two?"]
        assert messages[0].reply_to == asked["message"]["message_id"]

        # A reply to the bot's message addresses it too.
        await bots.say(GROUP, bots.bob, "and times three?", reply_to=messages[0].message_id)
        assert bots.replies(GROUP)[-1] == ("You said: Bob (replying to your last message): "
                                            "and times three?")

        # Other bots are ignored, even when they mention cabot; so are commands for them.
        other = bots.fake.add_user(999, "Echo", "echo_bot", is_bot=True)
        await bots.say(GROUP, other, "@cabot_test_bot hello fellow bot")
        await bots.say(GROUP, bots.bob, "/help@echo_bot")
        assert len(bots.replies(GROUP)) == 2
        assert len(backend.requests) == 2


async def test_answer_always_makes_cabot_answer_unaddressed_group_messages(
    tmp_path: Path,
) -> None:
    # With privacy mode off Telegram delivers every group message; /answer always uses them.
    async with running(tmp_path, FakeBackend("Sure.")) as bots:
        await bots.say(GROUP, bots.carol, "/answer always")
        assert "every message" in bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, "is anyone here?")
        assert bots.replies(GROUP)[-1] == "Sure."


# -- who may change profiles -------------------------------------------------------------


async def test_an_admin_switches_the_group_profile(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        await bots.say(GROUP, bots.carol, "/profile use kids")
        assert "now uses profile 'kids'" in bots.replies(GROUP)[-1]
        assert await bots.binding(group_scope()) == {"channel": "kids"}
        audit = await bots.app.store.alignment.audit_log("telegram", str(GROUP))
        assert [(a.actor_id, a.actor_name, a.new) for a in audit] == [
            ("103", "Carol", "profile 'kids'")
        ]

        await bots.say(GROUP, bots.bob, "/profile@cabot_test_bot show")
        assert bots.replies(GROUP)[-1].startswith("Profile 'kids' — set for this channel")

        # The owner counts as an admin too, and the admin list was fetched once.
        await bots.say(GROUP, bots.alice, "/profile use tutor --community")
        assert "whole community now uses profile 'tutor'" in bots.replies(GROUP)[-1]
        assert len(bots.fake.calls_to("getChatAdministrators")) == 1


async def test_a_non_admin_is_refused_and_the_store_is_unchanged(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        await bots.say(GROUP, bots.bob, "/profile use kids")
        assert "Only moderators" in bots.replies(GROUP)[-1]
        await bots.say(GROUP, bots.bob, "/answer always")
        assert "Only moderators" in bots.replies(GROUP)[-1]
        assert await bots.binding(group_scope()) == {}
        assert await bots.app.store.alignment.audit_log("telegram", str(GROUP)) == []
        assert await bots.app.store.conversations.reply_mode(group_scope()) is None


async def test_in_a_private_chat_the_user_moderates_their_own_chat(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        await bots.say(bots.bob["id"], bots.bob, "/profile use tutor")
        assert "now uses profile 'tutor'" in bots.replies(bots.bob["id"])[-1]
        assert bots.fake.calls_to("getChatAdministrators") == []


async def test_anonymous_admin_is_accepted_and_a_foreign_sender_chat_refused(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as bots:
        group = bots.fake.chats[GROUP]
        await bots.say(GROUP, ANONYMOUS_ADMIN, "/profile use kids", sender_chat=group)
        assert "now uses profile 'kids'" in bots.replies(GROUP)[-1]
        audit = await bots.app.store.alignment.audit_log("telegram", str(GROUP))
        assert audit[0].actor_name == "an anonymous admin of Readers"

        channel = bots.fake.add_channel(-1005550000, "Some Channel")
        await bots.say(GROUP, CHANNEL_BOT, "/profile use tutor", sender_chat=channel)
        assert "Only moderators" in bots.replies(GROUP)[-1]
        # GroupAnonymousBot with another chat as sender is no admin either.
        await bots.say(GROUP, ANONYMOUS_ADMIN, "/profile use tutor", sender_chat=channel)
        assert "Only moderators" in bots.replies(GROUP)[-1]
        assert await bots.binding(group_scope()) == {"channel": "kids"}
        # No lookup was needed to decide any of this.
        assert bots.fake.calls_to("getChatAdministrators") == []


async def test_admin_list_is_cached_briefly(tmp_path: Path) -> None:
    clock = SkippingClock()
    async with running(tmp_path, clock=clock, admin_cache=60.0) as bots:
        await bots.say(GROUP, bots.carol, "/profile use kids")
        bots.fake.admins[GROUP].discard(bots.carol["id"])  # Carol is demoted
        await bots.say(GROUP, bots.carol, "/profile use tutor")
        assert await bots.binding(group_scope()) == {"channel": "tutor"}
        clock.advance(61)
        await bots.say(GROUP, bots.carol, "/profile use default")
        assert "Only moderators" in bots.replies(GROUP)[-1]
        assert await bots.binding(group_scope()) == {"channel": "tutor"}
        assert len(bots.fake.calls_to("getChatAdministrators")) == 2


async def test_edited_messages_never_run_commands(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        posted = await bots.say(GROUP, bots.carol, "@cabot_test_bot hi")
        bots.fake.edit_post(posted, "/profile use kids")
        await bots.say(GROUP, bots.bob, "/profile show")
        assert await bots.binding(group_scope()) == {}
        assert bots.replies(GROUP)[-1].startswith("Profile 'default'")


# -- forum topics --------------------------------------------------------------------------


async def test_a_forum_topic_inherits_the_group_profile_and_can_override_it(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as bots:
        topic = bots.fake.create_topic(FORUM, "Homework", bots.alice)
        await bots.say(FORUM, bots.alice, "/profile use kids")  # in General: the whole group
        await bots.say(FORUM, bots.bob, "/profile show", thread_id=topic)
        shown = bots.replies(FORUM, topic)
        assert shown[-1].startswith("Profile 'kids' — set for this channel")

        await bots.say(FORUM, bots.alice, "/profile use tutor", thread_id=topic)
        assert "This thread now uses profile 'tutor'" in bots.replies(FORUM, topic)[-1]
        assert await bots.binding(group_scope(FORUM, topic)) == {
            "channel": "kids", "thread": "tutor"}
        await bots.say(FORUM, bots.bob, "/profile show", thread_id=topic)
        assert bots.replies(FORUM, topic)[-1].startswith("Profile 'tutor' — set for this thread")
        await bots.say(FORUM, bots.bob, "/profile show")
        assert bots.replies(FORUM, None)[-1].startswith("Profile 'kids'")

        # A message in the topic is not a reply to the bot, and is answered in the topic.
        await bots.say(FORUM, bots.bob, "hello there", thread_id=topic)
        assert len(bots.backend.requests) == 0
        await bots.say(FORUM, bots.bob, "@cabot_test_bot hello", thread_id=topic)
        assert bots.replies(FORUM, topic)[-1] == "Hello from the fake backend."
        assert bots.fake.calls_to("sendMessage")[-1].params["message_thread_id"] == topic


# -- what replies look like ------------------------------------------------------------------


async def test_the_fake_rejects_malformed_html_like_telegram(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        bot = Bot(TOKEN, base_url=bots.fake.base_url)
        async with bot:
            for bad in ("<b>bold", "a <foo> b", "<b><i>x</b></i>", "x</b>"):
                with pytest.raises(BadRequest, match="Can't parse entities"):
                    await bot.send_message(bots.bob["id"], bad, parse_mode=ParseMode.HTML)
            with pytest.raises(BadRequest, match="too long"):
                await bot.send_message(bots.bob["id"], "x" * 4097)


async def test_model_output_with_unbalanced_markdown_is_delivered(tmp_path: Path) -> None:
    reply = ("**Bold that never ends, a `stray backtick, <b>tags</b> & ampersands, "
             "snake_case_names and *stars* [a link](http://x) _under")
    async with running(tmp_path, FakeBackend(reply)) as bots:
        await bots.say(bots.bob["id"], bots.bob, "show me markdown")
        assert bots.replies(bots.bob["id"]) == [reply]
        calls = bots.fake.calls_to("sendMessage") + bots.fake.calls_to("editMessageText")
        assert all(call.ok for call in calls)
        assert calls[0].params["parse_mode"] == "HTML"


async def test_code_is_rendered_and_html_refusal_falls_back_to_plain_text(
    tmp_path: Path,
) -> None:
    reply = "Use this:\n```python\nprint(1 < 2)\n```\nand **that** is `all`."
    async with running(tmp_path, FakeBackend(reply, piece_chars=1000)) as bots:
        await bots.say(bots.bob["id"], bots.bob, "code please")
        shown = bots.fake.bot_messages(bots.bob["id"])[-1]
        assert shown.text == "Use this:\nprint(1 < 2)\nand that is all."
        assert shown.entity_types() == ["pre", "bold", "code"]
        assert shown.entities[0]["language"] == "python"

        bots.fake.fail("sendMessage", 400,
                       "Bad Request: can't parse entities: Unsupported start tag \"x\" at "
                       "byte offset 3")
        await bots.say(bots.bob["id"], bots.bob, "code again")
        assert bots.replies(bots.bob["id"])[-1] == reply
        refused = [c for c in bots.fake.calls_to("sendMessage") if not c.ok]
        assert len(refused) == 1


async def test_a_10000_character_reply_with_a_code_block_splits_correctly(
    tmp_path: Path,
) -> None:
    prose = " ".join(f"Sentence number {n} explains one more detail." for n in range(35))
    code = "\n".join(f"    total += value_{n}  # step {n}" for n in range(190))
    tail = " ".join(f"After the code, remark {n} wraps it up." for n in range(60))
    reply = f"{prose}\n\n```python\n{code}\n```\n\n{tail}"
    assert len(reply) > 10_000 and len(code) > 4096  # the code block must be cut
    async with running(tmp_path, FakeBackend(reply, piece_chars=500)) as bots:
        await bots.say(bots.bob["id"], bots.bob, "explain at length")
        messages = bots.fake.bot_messages(bots.bob["id"])
        assert len(messages) == 3
        assert all(0 < len(m.text) <= 4096 for m in messages)
        seen = "\n".join(m.text for m in messages)
        for n in range(190):  # every code line shown once
            assert seen.count(f"total += value_{n}  # step {n}") == 1
        for n in (0, 34):
            assert seen.count(f"Sentence number {n} explains") == 1
        assert seen.count("remark 59 wraps it up.") == 1
        assert "```" not in seen
        # The cut block is closed in one message and reopened, as python, in the next.
        blocks = [[e for e in m.entities if e["type"] == "pre"] for m in messages]
        assert [len(b) for b in blocks[:2]] == [1, 1]
        assert all(b[0]["language"] == "python" for b in blocks[:2])
        assert blocks[0][0]["offset"] + blocks[0][0]["length"] == len(messages[0].text)
        assert blocks[1][0]["offset"] == 0


# -- flood control -----------------------------------------------------------------------------


async def test_a_429_is_waited_out_and_the_reply_delivered(tmp_path: Path) -> None:
    clock = SkippingClock()
    async with running(tmp_path, clock=clock) as bots:
        bots.fake.flood_next("sendMessage", retry_after=7)
        await bots.say(bots.bob["id"], bots.bob, "hello?")
        assert bots.replies(bots.bob["id"]) == ["Hello from the fake backend."]
        sends = bots.fake.calls_to("sendMessage")
        assert [c.error_code for c in sends] == [429, None]
        assert sends[1].at - sends[0].at >= 7


async def test_a_429_on_an_edit_delays_it_and_the_final_text_arrives(tmp_path: Path) -> None:
    clock = SkippingClock()
    reply = "First part of the answer. Second part of the answer. The end."
    backend = FakeBackend(reply, piece_chars=6, rate=200, sleep=clock.sleep)
    async with running(tmp_path, backend, clock=clock, edit_interval=0.0) as bots:
        bots.fake.flood_next("editMessageText", retry_after=4)
        await bots.say(bots.bob["id"], bots.bob, "answer in parts")
        assert bots.replies(bots.bob["id"]) == [reply]
        edits = bots.fake.calls_to("editMessageText")
        assert edits[0].error_code == 429
        assert edits[1].ok and edits[1].at - edits[0].at >= 4


async def test_message_not_modified_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The closing fence changes the markdown but not what Telegram shows.
    reply = "Look:\n```\nx = 1\n```"
    clock = SkippingClock()
    backend = FakeBackend(reply, piece_chars=1, rate=200, sleep=clock.sleep)
    async with running(tmp_path, backend, clock=clock, edit_interval=0.0) as bots:
        await bots.say(bots.bob["id"], bots.bob, "show code")
        assert bots.replies(bots.bob["id"]) == ["Look:\nx = 1"]
        refused = [c.description or "" for c in bots.fake.calls_to("editMessageText")
                   if c.error_code == 400]
        assert refused and all("not modified" in reason for reason in refused)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_flood_wait_too_long_drops_the_reply_and_the_bot_keeps_running(
    tmp_path: Path,
) -> None:
    clock = SkippingClock()
    async with running(tmp_path, clock=clock, max_retry_wait=30.0) as bots:
        bots.fake.flood_next("sendMessage", retry_after=300)
        await bots.say(bots.bob["id"], bots.bob, "hello?")
        assert bots.replies(bots.bob["id"]) == []
        clock.advance(301)
        await bots.say(bots.bob["id"], bots.bob, "hello again?")
        assert bots.replies(bots.bob["id"]) == ["Hello from the fake backend."]


async def test_streaming_in_a_group_stays_within_20_messages_a_minute(tmp_path: Path) -> None:
    clock = SkippingClock()
    reply = " ".join(f"word{n}" for n in range(200))
    backend = FakeBackend(reply, piece_chars=6, rate=500, sleep=clock.sleep)
    # No edit interval in the router: every piece asks for an edit, the adapter paces them.
    async with running(tmp_path, backend, clock=clock, edit_interval=0.0) as bots:
        for n in range(3):
            await bots.say(GROUP, bots.bob, f"@cabot_test_bot tell me story {n}")
        assert bots.replies(GROUP) == [reply] * 3
        calls = [c for c in bots.fake.calls if c.method in ("sendMessage", "editMessageText")]
        assert all(c.error_code != 429 for c in calls)
        times = [c.at for c in calls if c.ok]
        for index, start in enumerate(times):
            assert len([t for t in times[index:] if t < start + 60]) <= 20
        edits = [m.versions for m in bots.fake.bot_messages(GROUP)]
        assert all(len(v) >= 2 for v in edits), "replies should still stream"


async def test_a_long_generation_does_not_delay_a_command_elsewhere(tmp_path: Path) -> None:
    backend = FakeBackend("Finally done.", gated=True)
    async with running(tmp_path, backend) as bots:
        bots.fake.post(bots.bob["id"], bots.bob, "write me a very long essay")
        await bots.fake.wait_for(lambda: bool(backend.requests))
        await bots.fake.wait_for(lambda: bool(bots.fake.calls_to("sendChatAction")))

        bots.fake.post(GROUP, bots.carol, "/profile use kids")
        await bots.fake.wait_for(lambda: bool(bots.replies(GROUP)))
        assert "now uses profile 'kids'" in bots.replies(GROUP)[0]
        assert backend.finished == [] and bots.replies(bots.bob["id"]) == []

        backend.release()
        await bots.settle()
        assert bots.replies(bots.bob["id"]) == ["Finally done."]


async def test_a_waiting_question_gets_a_queue_notice_then_its_answer(tmp_path: Path) -> None:
    backend = FakeBackend("Answer.", gated=True)
    async with running(tmp_path, backend) as bots:
        bots.fake.post(bots.alice["id"], bots.alice, "first question")
        await bots.fake.wait_for(lambda: len(backend.requests) == 1)
        bots.fake.post(GROUP, bots.bob, "@cabot_test_bot second question")
        await bots.fake.wait_for(lambda: bool(bots.replies(GROUP)))
        assert bots.replies(GROUP) == ["⏳ Queued: 1 request ahead of yours."]
        backend.release(2)
        await bots.settle()
        assert bots.replies(GROUP) == ["⏳ Queued: 1 request ahead of yours.", "Answer."]
        assert bots.replies(bots.alice["id"]) == ["Answer."]


# -- errors and secrets ------------------------------------------------------------------------


async def test_removed_from_a_group_the_bot_logs_once_and_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend("Here is my answer.", gated=True)
    async with running(tmp_path, backend) as bots:
        bots.fake.post(GROUP, bots.bob, "@cabot_test_bot question one")
        await bots.fake.wait_for(lambda: len(backend.requests) == 1)
        bots.fake.kick_bot(GROUP)
        backend.release()
        await bots.settle()
        assert bots.replies(GROUP) == []
        warnings = [r for r in caplog.records
                    if r.levelno >= logging.WARNING and "kicked" in r.getMessage()]
        assert len(warnings) == 1

        bots.fake.post(bots.bob["id"], bots.bob, "are you still there?")
        backend.release()
        await bots.settle()
        assert bots.replies(bots.bob["id"]) == ["Here is my answer."]


async def test_a_reply_deleted_while_streaming_is_posted_again(tmp_path: Path) -> None:
    reply = "One. Two. Three. Four. Five. Six. Seven."
    backend = FakeBackend(reply, piece_chars=5, pause_after=1)  # waits after "One. "
    async with running(tmp_path, backend, edit_interval=0.05) as bots:
        bots.fake.post(bots.bob["id"], bots.bob, "count")
        await bots.fake.wait_for(lambda: bool(bots.fake.bot_messages(bots.bob["id"])))
        first = bots.fake.bot_messages(bots.bob["id"])[0]
        assert first.text == "One."
        bots.fake.delete_message(bots.bob["id"], first.message_id)
        backend.release()
        await bots.settle()
        assert bots.replies(bots.bob["id"]) == [reply]


async def test_the_token_appears_in_no_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = SkippingClock()
    async with running(tmp_path, clock=clock) as bots:
        await bots.say(bots.bob["id"], bots.bob, "hello")
        bots.fake.flood_next("sendMessage", retry_after=3)
        await bots.say(GROUP, bots.carol, "/profile use kids")
        bots.fake.fail("editMessageText", 400, "Bad Request: message to edit not found")
        await bots.say(GROUP, bots.bob, "@cabot_test_bot hi")
        bots.fake.kick_bot(GROUP)
        await bots.say(GROUP, bots.bob, "@cabot_test_bot are you there?")
    lines = [record.getMessage() for record in caplog.records]
    assert any("telegram" in line.lower() for line in lines)  # logging was captured
    assert any(record.name.startswith("telegram") for record in caplog.records)
    assert not [line for line in lines if SECRET in line]
    assert SECRET not in caplog.text


async def test_a_logger_created_after_start_prints_no_token_either(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path) as bots:
        # A library imported once the bot runs, under a name cabot has never heard of.
        late = logging.getLogger("late_library.http")
        url = f"{bots.fake.base_url}{TOKEN}/sendMessage"
        late.debug("POST %s", url)
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            late.exception("request failed")
    records = [r for r in caplog.records if r.name == "late_library.http"]
    assert [r.getMessage() for r in records] == [
        f"POST {bots.fake.base_url}<telegram-token>/sendMessage", "request failed"]
    assert SECRET not in caplog.text
    assert f"cannot reach {bots.fake.base_url}<telegram-token>/sendMessage" in caplog.text


async def test_webhook_mode_receives_signed_updates(tmp_path: Path) -> None:
    async with running(tmp_path, webhook_url="http://127.0.0.1/telegram/hook",
                       webhook_listen="127.0.0.1", webhook_port=0) as bots:
        webhook = bots.fake.webhook
        assert webhook is not None and webhook["secret_token"]
        assert "edited_message" not in webhook["allowed_updates"]
        port = bots.adapter.webhook_port
        webhook["url"] = f"http://127.0.0.1:{port}/telegram/hook"

        update = bots.fake.post(GROUP, bots.carol, "@cabot_test_bot hi")
        edited = bots.fake.edit_post(update, "/profile use kids")
        assert await bots.fake.deliver_webhook(edited) == 200  # Telegram would not send it
        assert await bots.fake.deliver_webhook(update) == 200
        await bots.settle()
        assert bots.replies(GROUP) == ["Hello from the fake backend."]
        assert await bots.binding(group_scope()) == {}
        assert bots.fake.calls_to("getUpdates") == []

        secret = webhook["secret_token"]
        webhook["secret_token"] = "forged"
        forged = bots.fake.post(GROUP, bots.carol, "/profile use kids")
        assert await bots.fake.deliver_webhook(forged) == 403
        webhook["secret_token"] = secret
        assert await bots.fake.deliver_webhook(bots.fake.post(GROUP, bots.bob, "/help")) == 200
        await bots.settle()
        assert await bots.binding(group_scope()) == {}
        assert len(bots.replies(GROUP)) == 2


# -- the real engine -------------------------------------------------------------------------------


@pytest.mark.model
async def test_the_real_model_streams_a_reply_in_a_private_chat(
    tmp_path: Path, model_path: Path
) -> None:
    from bot.backends.llama import LlamaBackend

    # One thread: on a shared 2-core machine two spinning llama.cpp threads can crawl.
    engine = LlamaBackend(model_path, n_ctx=1024, n_threads=1, cache_bytes=0)
    async with running(tmp_path, real_backend=engine, core={"n_ctx": 1024, "reply_tokens": 48},
                       edit_interval=0.2) as bots:
        await bots.say(bots.bob["id"], bots.bob, "What is the capital of France?")
        messages = bots.fake.bot_messages(bots.bob["id"])
        assert len(messages) == 1
        shown = messages[0]
        assert shown.text.strip() and len(shown.text) <= 4096
        assert shown.versions[-1] == shown.text
        assert all(c.ok for c in bots.fake.calls_to("sendMessage"))
        assert bots.fake.calls_to("sendChatAction")
        history = await bots.app.store.conversations.history(Scope(
            platform="telegram", community=str(bots.bob["id"]), channel=str(bots.bob["id"])), 10)
        assert [role for role, _ in history] == ["user", "assistant"]


# -- a group upgraded to a supergroup ---------------------------------------------------

BASIC, UPGRADED = -4001, -1004001


async def test_a_group_upgraded_to_a_supergroup_keeps_its_settings_and_memory(
    tmp_path: Path,
) -> None:
    backend = FakeBackend(lambda r: f"You said: {last_user_text(r)}")
    async with running(tmp_path, backend) as bots:
        fake = bots.fake
        fake.add_basic_group(BASIC, "Old readers", owner=bots.alice, admins=(bots.carol,))
        await bots.say(BASIC, bots.alice, "/profile use kids")
        await bots.say(BASIC, bots.alice, "/profile lock no-links")
        await bots.say(BASIC, bots.alice, "/answer always")
        await bots.say(BASIC, bots.bob, "Remember the word heron.")
        fake.upgrade_group(BASIC, UPGRADED)
        await bots.settle()
        await bots.say(UPGRADED, bots.bob, "Which word was it?")  # unaddressed: answer always
        shown = await bots.say(UPGRADED, bots.bob, "/profile show")
        audit = await bots.app.store.alignment.audit_log("telegram", str(UPGRADED))
        old_audit = await bots.app.store.alignment.audit_log("telegram", str(BASIC))

    request = backend.requests[-1]
    said = [m.content for m in request.messages if m.role == "user"]
    assert said == ["Bob: Remember the word heron.", "Bob: Which word was it?"]
    replies = bots.replies(UPGRADED)
    assert replies[0] == "You said: Bob: Which word was it?"
    assert replies[-1].startswith("Profile 'kids' — set for this channel")
    assert "no-links (built-in) [locked by Alice]" in replies[-1]
    assert [entry.action for entry in audit][:1] == ["move community"]
    assert {"bind channel", "lock"} <= {entry.action for entry in audit}
    assert old_audit == []
    assert shown["message"]["chat"]["id"] == UPGRADED


# -- the operator's floor and community locks ---------------------------------------------


async def test_group_admins_lock_layers_for_every_topic_and_the_floor_binds_all(
    tmp_path: Path,
) -> None:
    backend = FakeBackend("Sure, you bastard: see https://example.com for more.")
    core = {"floor_layers": ("family-friendly",)}
    async with running(tmp_path, backend, core=core) as bots:
        fake = bots.fake
        topic = fake.create_topic(FORUM, "Stories", bots.alice)
        await bots.say(FORUM, bots.bob, "/profile lock no-links", thread_id=topic)
        await bots.say(FORUM, bots.alice, "/profile lock no-links")
        await bots.say(FORUM, bots.alice, "/profile use storyteller", thread_id=topic)
        await bots.say(FORUM, bots.alice, "/profile unlock family-friendly")
        await bots.say(FORUM, bots.bob, "@cabot_test_bot tell me a story", thread_id=topic)
        replies = bots.replies(FORUM)
        bindings = await bots.binding(group_scope(FORUM, topic))

    refused_lock, locked, refused_use, refused_unlock, story = replies
    assert refused_lock.startswith("Only community moderators")
    assert locked.startswith("Locked no-links for the whole community")
    assert "'fiction' conflicts with 'family-friendly', which the operator" in refused_use
    assert "operator's floor" in refused_unlock
    assert bindings == {}
    assert "bastard" not in story and "example.com" not in story
    assert "bastard" in backend.requests[-1].banned


# -- a flooding member -------------------------------------------------------------------


async def test_a_flood_of_500_messages_is_not_amplified(tmp_path: Path) -> None:
    backend = FakeBackend(lambda r: f"You said: {last_user_text(r)}")
    core = {"user_rate": 6, "flood_messages": 20}
    async with running(tmp_path, backend, core=core) as bots:
        for n in range(500):
            bots.fake.post(GROUP, bots.bob, f"@cabot_test_bot spam {n}")
        await bots.settle()
        await bots.say(GROUP, bots.alice, "@cabot_test_bot a real question")
        await bots.say(bots.alice["id"], bots.alice, "and one in private")
        shown = bots.replies(GROUP)
        refused = [c for c in bots.fake.calls if not c.ok]

    assert refused == [], "no request over Telegram's limits"
    spam_answers = [text for text in shown if text.startswith("You said: Bob: spam")]
    notices = [text for text in shown if "faster than I can answer" in text]
    assert len(spam_answers) == 6 and len(notices) == 1
    assert shown[-1] == "You said: Alice: a real question"
    assert len(shown) == 8
    assert bots.replies(bots.alice["id"]) == ["You said: and one in private"]
