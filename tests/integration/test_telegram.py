"""The Telegram adapter end to end: the real python-telegram-bot client against a fake Bot API.

Every test runs cabot's App with the Telegram adapter, talks to it as Telegram users would
(through ``FakeTelegram.post``) and asserts on what those users see in their chats.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest

from adapters.telegram import TelegramAdapter
from bot.app import App
from bot.backends.base import Backend, GenerationRequest
from bot.messages import Scope
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_telegram import (
    ANONYMOUS_ADMIN,
    CHANNEL_BOT,
    JSON,
    ChatMessage,
    FakeClock,
    FakeTelegram,
    parse_html,
)

TOKEN = "5550001234:AAH-fake-telegram-token_for-tests-only0"
SECRET = TOKEN.split(":", 1)[1]
GROUP = -1001234567890
FORUM = -1009876543210


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-telegram-bot warns on every RetryAfter unless this opt-in is set, and the test
    # configuration turns warnings into errors.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@dataclass
class Bots:
    """A running cabot with its Telegram adapter, the fake Bot API and some people."""

    fake: FakeTelegram
    app: App
    adapter: TelegramAdapter
    backend: FakeBackend
    alice: JSON  # owner of the groups
    bob: JSON  # a plain member
    carol: JSON  # an administrator

    async def settle(self) -> None:
        """Wait until every update posted so far is handled and its replies are shown."""
        last = max((u["update_id"] for u in self.fake._updates), default=0)
        deadline = time.monotonic() + 10
        while self.adapter.last_update_id < last:
            assert time.monotonic() < deadline, "the bot did not receive the update"
            await asyncio.sleep(0.005)
        await self.app.router.drain()
        await self.adapter.flush()

    async def say(self, chat_id: int, sender: JSON, text: str, **kwargs: Any) -> JSON:
        """Post a message and wait until the bot has dealt with it."""
        update = self.fake.post(chat_id, sender, text, **kwargs)
        await self.settle()
        return update

    def replies(self, chat_id: int, thread_id: int | str | None = "any") -> list[str]:
        return [m.text for m in self.fake.bot_messages(chat_id, thread_id)]

    async def binding(self, scope: Scope) -> dict[str, str | None]:
        found = await self.app.store.bindings_for(scope)
        return {level: binding.profile for level, binding in found.items()}


@asynccontextmanager
async def running(
    tmp_path: Path,
    backend: FakeBackend | None = None,
    *,
    clock: FakeClock | None = None,
    real_backend: Backend | None = None,
    **settings: Any,
) -> AsyncIterator[Bots]:
    """cabot on Telegram against a fresh fake Bot API."""
    fake = FakeTelegram(TOKEN, clock=clock or time.monotonic)
    await fake.start()
    backend = backend if backend is not None else FakeBackend()
    app = make_app(tmp_path, real_backend or backend, telegram_token=TOKEN,
                   telegram_base_url=fake.base_url, **settings)
    if clock is not None:
        adapter = TelegramAdapter(app.settings, clock=clock, sleep=clock.sleep)
    else:
        adapter = TelegramAdapter(app.settings)
    alice = fake.add_user(101, "Alice", "alice")
    bob = fake.add_user(102, "Bob", "bob")
    carol = fake.add_user(103, "Carol", "carol")
    fake.add_private_chat(alice)
    fake.add_private_chat(bob)
    fake.add_group(GROUP, "Readers", owner=alice, admins=(carol,))
    fake.add_group(FORUM, "Forum", owner=alice, forum=True)
    try:
        await app.start([adapter])
        yield Bots(fake, app, adapter, backend, alice, bob, carol)
    finally:
        await app.stop()
        await fake.stop()


def group_scope(chat_id: int = GROUP, thread: int | None = None) -> Scope:
    return Scope(platform="telegram", community=str(chat_id), channel=str(chat_id),
                 thread=str(thread) if thread is not None else None)


class SlowBackend(FakeBackend):
    """Streams its reply piece by piece with a real pause between pieces."""

    def __init__(self, reply: str, *, pause: float, piece_chars: int = 8) -> None:
        super().__init__(reply, piece_chars=piece_chars)
        self.pause = pause

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        text = self.text_for(request)
        for start in range(0, len(text), self.piece_chars):
            await asyncio.sleep(self.pause)
            yield text[start : start + self.piece_chars]
        self.finished.append(request)


# -- private chats and streaming -------------------------------------------------------


async def test_private_chat_gets_a_streamed_reply_within_the_edit_rate(tmp_path: Path) -> None:
    reply = ("Paris is the capital of France. It sits on the Seine, and it has been the "
             "country's capital for most of the last thousand years. ") * 2
    backend = SlowBackend(reply, pause=0.015)
    async with running(tmp_path, backend, telegram_edit_interval=0.1) as bots:
        await bots.say(bots.alice["id"], bots.alice, "What is the capital of France?")

        messages = bots.fake.bot_messages(bots.alice["id"])
        assert [m.text for m in messages] == [reply.strip()]
        shown = messages[0]
        assert len(shown.versions) >= 3, "the reply should grow by edits while it streams"
        assert all(reply.startswith(v) for v in shown.versions)
        times = [shown.sent_at, *shown.edit_times]
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert min(gaps) >= 0.1 * 0.9, f"edits closer than the edit interval: {gaps}"
        typing = bots.fake.calls_to("sendChatAction")
        assert typing and typing[0].params["action"] == "typing"
        assert typing[0].at <= shown.sent_at
        assert last_user_text(backend.requests[0]) == "What is the capital of France?"


async def test_commands_are_registered_for_the_menu(tmp_path: Path) -> None:
    async with running(tmp_path) as bots:
        names = [command["command"] for command in bots.fake.commands]
        assert names == ["profile", "forget", "answer", "help"]
        await bots.say(bots.bob["id"], bots.bob, "/help")
        assert "/profile show" in bots.replies(bots.bob["id"])[0]
