"""Telegram reconnects: the real python-telegram-bot client while the Bot API is away.

The fake answers getUpdates with 502 Bad Gateway, or closes the connection unanswered, a
few times in a row (the long poll waiting at that moment first). Users go on writing
meanwhile. Each test checks that cabot polls again by itself, answers what was written
during the outage and after it exactly once, and logs one warning per outage and one
line when polling is back, instead of a traceback per failed poll.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.telegram import TelegramAdapter
from bot.app import App
from tests.helpers.apps import make_app, telegram_settings
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_telegram import GROUP, JSON, TOKEN, FakeTelegram

POLL_INTERVAL = 0.01
"""Seconds between polls; failed polls are retried after 1.5x, 2.25x... of it."""
FAILED_POLLS = 4
BACK = re.compile(r"Telegram long polling back after [\d.]+ s \((\d+) failed polls\)")


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-telegram-bot warns on every RetryAfter unless this opt-in is set.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@dataclass
class Chat:
    """cabot on the fake Bot API, and a member of a group it is in."""

    fake: FakeTelegram
    app: App
    backend: FakeBackend
    user: JSON
    caplog: pytest.LogCaptureFixture

    def write(self, text: str) -> JSON:
        """The member asks cabot (Telegram keeps the update until the bot fetches it)."""
        return self.fake.post(GROUP, self.user, f"@{self.fake.me['username']} {text}")

    async def answered(self, update: JSON) -> None:
        await self.fake.wait_for(lambda: bool(self.replies_to(update)))
        await self.app.router.drain()

    async def ask(self, text: str) -> JSON:
        update = self.write(text)
        await self.answered(update)
        return update

    def replies_to(self, update: JSON) -> list[str]:
        message_id = update["message"]["message_id"]
        return [m.text for m in self.fake.bot_messages(GROUP) if m.reply_to == message_id]

    def assert_each_answered_once(self, *asked: JSON) -> None:
        for update in asked:
            assert len(self.replies_to(update)) == 1, f"{update['message']['text']!r}"
        prompts = [last_user_text(request) for request in self.backend.requests]
        assert len(prompts) == len(asked)
        for update in asked:  # (the core may put the speaker's name before the text)
            text = update["message"]["text"].split(" ", 1)[1]
            assert sum(text in prompt for prompt in prompts) == 1, text

    def outage_log(self) -> tuple[list[str], list[str]]:
        """(warnings and worse, "back after" lines) logged since the last ``caplog.clear``."""
        records = self.caplog.records
        worse = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
        back = [r.getMessage() for r in records if BACK.fullmatch(r.getMessage())]
        return worse, back


@asynccontextmanager
async def running(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Chat]:
    caplog.set_level(logging.INFO)
    fake = FakeTelegram(TOKEN, clock=time.monotonic)
    await fake.start()
    backend = FakeBackend(lambda request: f"About {last_user_text(request)}.",
                          piece_chars=1000)
    app = make_app(tmp_path, backend)
    settings = telegram_settings(token=TOKEN, base_url=fake.base_url,
                                 poll_interval=POLL_INTERVAL)
    user = fake.add_user(101, "Alice", "alice")
    fake.add_group(GROUP, "Readers", owner=user)
    try:
        await app.start([TelegramAdapter(settings)])
        yield Chat(fake, app, backend, user, caplog)
    finally:
        await app.stop()
        await fake.stop()


@pytest.mark.parametrize(("how", "reason"), [
    ("502", "NetworkError: Bad Gateway (502)"),
    ("drop", "NetworkError: httpx.RemoteProtocolError: Server disconnected without sending "
             "a response."),
])
async def test_a_failing_long_poll_is_retried_and_what_was_written_meanwhile_answered_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, reason: str
) -> None:
    async with running(tmp_path, caplog) as chat:
        asked = [await chat.ask("the first chapter")]
        caplog.clear()

        for outage in range(1, 3):
            chat.fake.break_polling(FAILED_POLLS, how)
            during = chat.write(f"are you there? ({outage})")
            await chat.answered(during)
            assert chat.fake.failed_polls == FAILED_POLLS * outage
            asked += [during, await chat.ask(f"chapter {outage + 1}")]

        chat.assert_each_answered_once(*asked)
        worse, back = chat.outage_log()
        assert worse == [f"Telegram long polling failed ({reason}); retrying"] * 2, (
            "one line per outage, not one per failed poll")
        assert back == [line for line in back if line.endswith(f"({FAILED_POLLS} failed polls)")]
        assert len(back) == 2


async def test_a_token_revoked_while_polling_is_said_once_with_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, caplog) as chat:
        await chat.ask("the first chapter")
        caplog.clear()

        chat.fake.revoke_token()
        await chat.fake.wait_for(lambda: chat.fake.unauthorized >= 1)
        polls = chat.fake.unauthorized
        for _ in range(20):
            await asyncio.sleep(POLL_INTERVAL * 2)
        assert chat.fake.unauthorized == polls, "polling stops: the token will not work again"
    # ... and cabot still stops cleanly.

    worse = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in worse] == [
        "Telegram rejected the bot token while polling (401 Unauthorized): it was "
        "revoked or replaced in @BotFather, so nothing more is received from Telegram. "
        "Put the new token in CABOT_TELEGRAM_TOKEN and restart cabot."]
    assert not any(r.exc_info for r in caplog.records), "no traceback"
    secret = TOKEN.split(":", 1)[1]
    assert not any(secret in r.getMessage() for r in caplog.records)
