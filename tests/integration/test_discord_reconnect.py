"""Discord reconnects: the real discord.py client while the fake gateway fails as Discord's do.

Each test breaks the connection in one way — a dropped socket, a close code that allows a
resume, one that ends the session, a connection gone quiet, a gateway refusing
connections for a while, a revoked token — then checks what members see (every message
answered exactly once, those sent during the outage included when Discord replays them)
and what the operator reads: one warning per outage, one line when it is over.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord.client
import pytest

from adapters.discord import DiscordAdapter
from bot.app import App
from tests.helpers.apps import discord_settings, make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_discord import FakeDiscord, FakeMessage

JSON = dict[str, Any]
QUICK_HEARTBEAT = 0.05
"""Seconds between heartbeats the fake asks for when a test stops acknowledging them."""
QUICK_TIMEOUT = 0.5
"""Seconds without a frame after which the client then gives its connection up."""
LOST = re.compile(r"Discord gateway connection lost \((.+)\); reconnecting")
BACK = re.compile(r"Discord gateway back after [\d.]+ s \((resumed|new session)\)")


class QuickBackoff:
    """discord.py's ``ExponentialBackoff`` in hundredths of a second: the same doubling
    between failed connection attempts, without the tests sitting out seconds of it."""

    def __init__(self) -> None:
        self._tries = 0

    def delay(self) -> float:
        self._tries += 1
        return min(0.01 * 2.0**self._tries, 0.2)


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Client.connect builds its backoff from this module-level name at each start.
    monkeypatch.setattr(discord.client, "ExponentialBackoff", QuickBackoff)


@dataclass
class Server:
    """A fake Discord with one guild, one member and one channel, and cabot connected."""

    fake: FakeDiscord
    app: App
    adapter: DiscordAdapter
    backend: FakeBackend
    member: JSON
    channel: str
    caplog: pytest.LogCaptureFixture

    async def ask(self, text: str) -> FakeMessage:
        """The member mentions cabot; returns the message once cabot has answered it."""
        message = await self.fake.say(self.member, self.channel,
                                      f"<@{self.fake.bot['id']}> {text}")
        await self.answered(message)
        return message

    async def answered(self, message: FakeMessage) -> None:
        await self.fake.wait_for(lambda: bool(self.replies_to(message)))
        await self.app.router.drain()

    def replies_to(self, message: FakeMessage) -> list[FakeMessage]:
        return [m for m in self.fake.bot_messages(self.channel) if m.reply_to == message.id]

    async def back(self, since: int) -> None:
        """Until a connection opened after the first ``since`` carries a session again."""
        gateway = self.fake.gateway

        def carried() -> bool:
            return any({"READY", "RESUMED"} & set(link.answered)
                       for link in gateway.links[since:])

        await self.fake.wait_for(carried)

    def assert_each_answered_once(self, *asked: FakeMessage) -> None:
        """Every message got one reply, and the model was asked once per message."""
        for message in asked:
            assert len(self.replies_to(message)) == 1, f"{message.content!r} answered twice"
        prompts = [last_user_text(request) for request in self.backend.requests]
        assert len(prompts) == len(asked)
        for message in asked:  # (the core may put the speaker's name before the text)
            text = message.content.split(" ", 1)[1]
            assert sum(text in prompt for prompt in prompts) == 1, text

    def outage_log(self) -> tuple[list[str], list[str]]:
        """(warnings and worse, "back after" lines) logged since the last ``caplog.clear``."""
        records = self.caplog.records
        worse = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
        back = [r.getMessage() for r in records if BACK.fullmatch(r.getMessage())]
        return worse, back


@asynccontextmanager
async def running(tmp_path: Path, caplog: pytest.LogCaptureFixture, *,
                  quick_heartbeats: bool = False) -> AsyncIterator[Server]:
    """cabot on a fresh fake Discord (heartbeats at Discord's pace unless
    ``quick_heartbeats``: every 0.05 s, a connection given up after 0.5 s of silence)."""
    caplog.set_level(logging.INFO)
    async with FakeDiscord() as fake:
        options: dict[str, Any] = {"guild_ready_timeout": 0.01, "identify_delay": 0.01}
        if quick_heartbeats:
            fake.gateway.heartbeat_interval = QUICK_HEARTBEAT
            options["heartbeat_timeout"] = QUICK_TIMEOUT
        owner, member = fake.make_user("olive"), fake.make_user("max")
        guild = fake.add_guild("book club", owner)
        fake.add_member(guild, member)
        channel = fake.add_channel(guild, "general")
        # One piece per reply: one message each, no edits, well inside the channel's budget.
        backend = FakeBackend(lambda request: f"About {last_user_text(request)}.",
                              piece_chars=1000)
        app = make_app(tmp_path, backend)
        settings = discord_settings(token=fake.token, api_url=fake.api_url,
                                    gateway_url=fake.gateway_url)
        adapter = DiscordAdapter(settings, library=app.resolver.library_for, **options)
        await app.start([adapter])
        try:
            server = Server(fake, app, adapter, backend, member, channel, caplog)
            yield server
        finally:
            await app.stop()
        assert fake.errors == []


# -- the session survives ---------------------------------------------------------------


async def _close(fake: FakeDiscord, how: str) -> None:
    if how == "dropped":
        await fake.gateway.drop()
    elif how == "reconnect asked":
        await fake.gateway.ask_reconnect()
    else:
        await fake.gateway.close(int(how))


@pytest.mark.parametrize(("how", "reason"), [
    ("dropped", "1006 abnormal closure: dropped, or silent past the heartbeat timeout"),
    ("4000", "4000 unknown error"),
    ("1001", "1001 going away"),
    ("reconnect asked", "Discord asked to reconnect"),
])
async def test_a_connection_closed_so_it_may_resume_is_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, reason: str
) -> None:
    async with running(tmp_path, caplog) as server:
        gateway = server.fake.gateway
        asked = [await server.ask("the first chapter")]
        caplog.clear()

        for outage in range(2):
            links = len(gateway.links)
            await _close(server.fake, how)
            await server.back(links)
            assert gateway.links[-1].path == "/resume-gateway", "READY's resume_gateway_url"
            assert gateway.links[-1].answered == ["RESUMED"]
            asked.append(await server.ask(f"chapter {outage + 2}"))

        assert gateway.identifies == 1, "the session was resumed, never identified again"
        assert gateway.resumes == 2
        worse, back = server.outage_log()
        assert worse == [f"Discord gateway connection lost ({reason}); reconnecting"] * 2
        assert len(back) == 2 and all(line.endswith("(resumed)") for line in back)
        server.assert_each_answered_once(*asked)


async def test_a_connection_gone_quiet_is_given_up_and_resumed_with_what_it_missed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, caplog, quick_heartbeats=True) as server:
        gateway = server.fake.gateway
        before = await server.ask("the first chapter")
        caplog.clear()
        links = len(gateway.links)
        quiet = gateway.live_links()[0]
        beats = quiet.heartbeats

        gateway.stall()  # heartbeats go unanswered; events wait in the session
        during = await server.fake.say(server.member, server.channel,
                                       f"<@{server.fake.bot['id']}> anyone there?")
        await server.back(links)
        await server.answered(during)
        after = await server.ask("the last chapter")

        assert quiet.heartbeats > beats, "cabot went on beating, unanswered, then gave up"
        assert gateway.links[-1].answered == ["RESUMED"]
        assert gateway.links[-1].replayed >= 1, "the message sent meanwhile was replayed"
        server.assert_each_answered_once(before, during, after)
        worse, back = server.outage_log()
        assert len(worse) == 1 and LOST.fullmatch(worse[0]), worse
        assert len(back) == 1


async def test_events_delivered_again_on_resume_are_not_answered_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, caplog) as server:
        gateway = server.fake.gateway
        before = await server.ask("the first chapter")
        gateway.replay_overlap = 10  # the resume sends again events the client has seen
        links = len(gateway.links)

        await gateway.drop()
        await server.back(links)
        after = await server.ask("the second chapter")

        assert gateway.links[-1].replayed >= 2, "the question and its answer came again"
        server.assert_each_answered_once(before, after)


# -- a new session ----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "reason"), [
    (4007, "4007 invalid seq"),
    (4009, "4009 session timed out"),
])
async def test_a_session_discord_ended_is_identified_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, code: int, reason: str
) -> None:
    async with running(tmp_path, caplog) as server:
        gateway = server.fake.gateway
        before = await server.ask("the first chapter")
        caplog.clear()
        links = len(gateway.links)

        await gateway.close(code)
        await server.back(links)
        after = await server.ask("the second chapter")

        tried = gateway.links[links:]
        assert [link.answered for link in tried] == [["INVALID_SESSION"], ["READY"]]
        assert tried[0].asked[0].startswith("RESUME"), "discord.py tries to resume first"
        assert gateway.identifies == 2
        server.assert_each_answered_once(before, after)
        worse, back = server.outage_log()
        assert worse == [f"Discord gateway connection lost ({reason}); reconnecting"]
        assert len(back) == 1 and back[0].endswith("(new session)")


# -- a gateway away for a while ---------------------------------------------------------


async def test_a_gateway_refusing_connections_is_retried_with_backoff_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(tmp_path, caplog) as server:
        gateway = server.fake.gateway
        before = await server.ask("the first chapter")
        caplog.clear()
        links = len(gateway.links)

        gateway.refuse(4)  # Cloudflare answers 502 to the next four attempts
        await gateway.drop()
        during = await server.fake.say(server.member, server.channel,
                                       f"<@{server.fake.bot['id']}> still there?")
        await server.back(links)
        await server.answered(during)
        after = await server.ask("the last chapter")

        assert gateway.refused == 4
        assert gateway.links[-1].answered == ["RESUMED"]
        server.assert_each_answered_once(before, during, after)
        worse, back = server.outage_log()
        assert worse == ["Discord gateway connection lost (1006 abnormal closure: dropped, "
                         "or silent past the heartbeat timeout); reconnecting"], (
            "one line, not one per failed attempt")
        assert len(back) == 1


# -- a gateway that will not have cabot back --------------------------------------------


@pytest.mark.parametrize(("cause", "said"), [
    ("token revoked", ["authentication failed (4004)", "CABOT_DISCORD_TOKEN"]),
    ("intent withdrawn", ["Message Content intent", "(4014)", "developer portal"]),
])
async def test_a_close_that_allows_no_reconnect_ends_with_one_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cause: str, said: list[str]
) -> None:
    async with running(tmp_path, caplog) as server:
        token = server.fake.token
        await server.ask("the first chapter")
        caplog.clear()

        if cause == "token revoked":
            await server.fake.revoke_token()
        else:
            server.fake.message_content = False
            await server.fake.gateway.close(4014)
        async with asyncio.timeout(5):
            await server.adapter.wait_closed()

        assert len(server.fake.gateway.links) == 1, "no reconnecting: it cannot succeed"
        worse, back = server.outage_log()
        assert len(worse) == 1 and back == [], "no 'reconnecting' line before the error"
        assert all(words in worse[0] for words in said), worse[0]
        assert caplog.records[-1].levelno == logging.ERROR
        assert token not in caplog.text
