"""The Discord adapter end to end: the real discord.py client against a loopback fake Discord.

Every test looks at what people on Discord would see: the messages in a channel, the
answers to a slash command (and who can see them), who got pinged, plus the store.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter, DiscordSettings
from bot.app import App
from bot.backends.base import Backend
from bot.errors import ConfigError
from bot.messages import Scope
from bot.splitting import FENCE
from profiles import compose
from tests.helpers.apps import discord_settings, make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.fake_discord import (
    MANAGE_CHANNELS,
    MANAGE_GUILD,
    FakeDiscord,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    RateBudget,
)

JSON = dict[str, Any]
NO_PINGS: JSON = {"parse": []}
# Streaming tests run Discord's clock 20 times faster: an edit every 0.05 s against a
# budget of 5 messages per 0.25 s is the real 1 s against 5 per 5 s. (The wall clock it is:
# discord.py sleeps out rate limits on the event loop's clock.)
SCALE = 0.05


@dataclass
class World:
    """A server with an owner, a moderator of channels, a server manager and a member."""

    guild: FakeGuild
    owner: JSON
    channel_mod: JSON
    server_mod: JSON
    member: JSON
    other_bot: JSON
    general: str
    other: str
    thread: str


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake Discord whose message budget refills 20 times faster than the real one."""
    async with FakeDiscord(budget=RateBudget(limit=5, window=5.0 * SCALE)) as server:
        yield server
        assert server.errors == []


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    owner = fake.make_user("olive")
    guild = fake.add_guild("book club", owner)
    channel_mods = fake.add_role(guild, "channel mods", MANAGE_CHANNELS)
    server_mods = fake.add_role(guild, "server mods", MANAGE_GUILD)
    channel_mod, server_mod = fake.make_user("chan"), fake.make_user("serena")
    member, other_bot = fake.make_user("max"), fake.make_user("otherbot", bot=True)
    fake.add_member(guild, channel_mod, [channel_mods])
    fake.add_member(guild, server_mod, [server_mods])
    fake.add_member(guild, member)
    fake.add_member(guild, other_bot)
    general = fake.add_channel(guild, "general")
    other = fake.add_channel(guild, "other")
    thread = fake.add_thread(guild, general, "spoilers")
    return World(guild, owner, channel_mod, server_mod, member, other_bot, general, other,
                 thread)


@asynccontextmanager
async def running(
    tmp_path: Path, fake: FakeDiscord, backend: Backend, *, settings: JSON | None = None,
    discord: JSON | None = None, **options: Any,
) -> AsyncIterator[tuple[App, DiscordAdapter]]:
    """An App (core ``settings``) with a DiscordAdapter (``discord`` settings) on ``fake``."""
    app = make_app(tmp_path, backend, **(settings or {}))
    options.setdefault("guild_ready_timeout", 0.01)
    options.setdefault("channel_window", 5.0 * SCALE)  # the fake's budget, scaled
    adapter = DiscordAdapter(connected_to(fake, **(discord or {})),
                             library=app.resolver.library_for, **options)
    await app.start([adapter])
    try:
        yield app, adapter
    finally:
        await app.stop()


def connected_to(fake: FakeDiscord, **values: Any) -> DiscordSettings:
    """Discord settings pointing at ``fake`` with its token (unless ``values`` say else)."""
    return discord_settings(**{"token": fake.token, "api_url": fake.api_url,
                               "gateway_url": fake.gateway_url, **values})


def mention(fake: FakeDiscord) -> str:
    return f"<@{fake.bot['id']}>"


async def reply_to(fake: FakeDiscord, app: App, message: FakeMessage, within: float = 5.0
                   ) -> list[FakeMessage]:
    """The bot's messages in the channel once its answer to ``message`` is complete."""
    channel = message.channel_id
    await fake.wait_for(
        lambda: any(m.reply_to == message.id for m in fake.bot_messages(channel)), within
    )
    await app.router.drain()
    return [m for m in fake.bot_messages(channel) if int(m.id) > int(message.id)]


async def answers(fake: FakeDiscord, app: App, interaction: FakeInteraction
                  ) -> list[FakeMessage]:
    """What the invoker of a slash command sees once it is answered."""
    await fake.wait_for(lambda: bool(interaction.answers()))
    await app.router.drain()
    assert interaction.callback_type == 5, "every interaction is deferred at once"
    assert not interaction.late
    return interaction.answers()


def message_writes(fake: FakeDiscord, channel: str) -> list[tuple[float, int]]:
    """(time, status) of every send or edit in ``channel``."""
    path = rf"/channels/{channel}/messages"
    return [(r.at, r.status) for r in fake.requests
            if r.method in ("POST", "PATCH") and path in r.path]


# -- answering ------------------------------------------------------------------------


async def test_mention_gets_a_streamed_reply_whose_edits_stay_within_the_rate(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    reply = " ".join(f"Word{n}." for n in range(30))
    backend = FakeBackend(reply, rate=5 / SCALE)  # five pieces per edit interval
    async with running(tmp_path, fake, backend, edit_interval=1.0 * SCALE) as (app, _):
        asked = await fake.say(world.member, world.general,
                               f"{mention(fake)} please count for me")
        shown = await reply_to(fake, app, asked)

    assert fake.errors == []
    assert last_user_text(backend.requests[0]) == "max: please count for me"  # who said it
    assert [m.content for m in shown] == [reply]
    assert shown[0].reply_to == asked.id
    assert len(shown[0].edits) >= 3, "the reply grows in place"
    writes = message_writes(fake, world.general)
    assert all(status == 200 for _, status in writes), "no 429 from Discord"
    # Throttled edits are at least the edit interval apart; only the final one may not be.
    times = [at for at, _ in writes]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= 1.0 * SCALE for gap in gaps[:-1]), gaps
    typing = fake.requests_to("POST", rf"/channels/{world.general}/typing")
    assert typing and typing[0].at <= times[0], "typing shows before the first text"
    assert all(r.body["allowed_mentions"] == NO_PINGS
               for r in fake.requests_to("POST|PATCH", "/messages"))


async def test_a_direct_message_is_answered_in_its_own_community(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend("Hello in private.")) as (app, _):
        asked = await fake.dm(world.member, "hi, no mention needed here")
        shown = await reply_to(fake, app, asked)
        history = await app.store.conversations.history(
            Scope(platform="discord", community=f"dm-{world.member['id']}",
                  channel=asked.channel_id), 10)
    assert [m.content for m in shown] == ["Hello in private."]
    assert history == [("user", "hi, no mention needed here"),
                       ("assistant", "Hello in private.")]


async def test_slash_commands_work_in_a_direct_message(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        channel = fake.dm_channel(world.member)
        (done,) = await answers(fake, app, await fake.invoke(
            world.member, channel, "profile", "use", profile="tutor"))
        scope = Scope(platform="discord", community=f"dm-{world.member['id']}",
                      channel=channel)
        bindings = await app.store.alignment.bindings_for(scope)
    assert done.content.startswith("This channel now uses profile 'tutor'")
    assert bindings["channel"].profile == "tutor", "people run their own DMs"


async def test_a_thread_the_client_never_saw_is_looked_up_for_its_parent(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend("In the new thread.")) as (app, _):
        thread = fake.add_thread(world.guild, world.other, "created while connected")
        asked = await fake.say(world.member, thread, f"{mention(fake)} hello")
        shown = await reply_to(fake, app, asked)
        history = await app.store.conversations.history(
            Scope(platform="discord", community=world.guild.id, channel=world.other,
                  thread=thread), 10)
    assert [m.content for m in shown] == ["In the new thread."]
    assert history[-1] == ("assistant", "In the new thread.")
    assert fake.requests_to("GET", rf"/channels/{thread}$")


async def test_replies_to_the_bot_are_answered_and_unaddressed_chat_is_not(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend(lambda request: f"echo: {last_user_text(request)}")
    async with running(tmp_path, fake, backend) as (app, _):
        first = await fake.say(world.member, world.general, f"{mention(fake)} one")
        (bot_reply,) = await reply_to(fake, app, first)
        await fake.say(world.member, world.general, "just chatting with friends")
        follow_up = await fake.say(world.member, world.general, "two", reply_to=bot_reply.id)
        shown = await reply_to(fake, app, follow_up)
        # A moderator makes the channel answer everything.
        switch = await fake.invoke(world.channel_mod, world.general, "answer", mode="always")
        await answers(fake, app, switch)
        plain = await fake.say(world.member, world.general, "three")
        everything = await reply_to(fake, app, plain)
    assert [last_user_text(r) for r in backend.requests] == [
        "max: one", "max (replying to your last message): two", "max: three"]
    assert [m.content for m in shown] == ["echo: max (replying to your last message): two"]
    assert [m.content for m in everything] == ["echo: max: three"]


async def test_other_bots_and_itself_are_ignored(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend(lambda request: f"{mention(fake)} you said {last_user_text(request)}")
    async with running(tmp_path, fake, backend) as (app, _):
        from_bot = await fake.say(world.other_bot, world.general, f"{mention(fake)} loop?")
        asked = await fake.say(world.member, world.general, f"{mention(fake)} hello")
        shown = await reply_to(fake, app, asked)
    # cabot's own reply mentions itself and came back over the gateway: not answered either.
    assert [last_user_text(r) for r in backend.requests] == ["max: hello"]
    assert len(shown) == 1
    assert not any(m.reply_to == from_bot.id for m in fake.bot_messages(world.general))


# -- profiles and moderators ------------------------------------------------------------


async def test_a_moderator_switches_the_server_profile_with_a_slash_command(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        switch = await fake.invoke(world.server_mod, world.general, "profile", "use",
                                   profile="kids", scope="community")
        (done,) = await answers(fake, app, switch)
        show = await fake.invoke(world.member, world.other, "profile", "show")
        (shown,) = await answers(fake, app, show)
        scope = Scope(platform="discord", community=world.guild.id, channel=world.other)
        bindings = await app.store.alignment.bindings_for(scope)
        audit = await app.store.alignment.audit_log("discord", world.guild.id)

    assert not done.ephemeral, "a change is announced to the channel"
    assert "community now uses profile 'kids'" in done.content
    assert done in fake.visible(world.general)
    assert bindings["community"].profile == "kids"
    assert [(e.actor_id, e.actor_name, e.new) for e in audit] == [
        (world.server_mod["id"], "serena", "profile 'kids'")
    ]
    assert shown.ephemeral, "/profile show concerns only the one who asked"
    assert shown.content.startswith("Profile 'kids' — set for the whole community")
    assert shown not in fake.visible(world.other)


async def test_a_non_moderator_is_refused_and_nothing_changes(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (app, _):
        attempt = await fake.invoke(world.member, world.general, "profile", "use", profile="kids")
        (refusal,) = await answers(fake, app, attempt)
        # A channel moderator may change the channel but not the whole server.
        too_far = await fake.invoke(world.channel_mod, world.general, "profile", "use",
                                    profile="kids", scope="community")
        (refused,) = await answers(fake, app, too_far)
        scope = Scope(platform="discord", community=world.guild.id, channel=world.general)
        bindings = await app.store.alignment.bindings_for(scope)
        audit = await app.store.alignment.audit_log("discord", world.guild.id)
    assert refusal.ephemeral and refused.ephemeral
    assert refusal.content.startswith("Only moderators")
    assert refused.content.startswith("Only community moderators")
    assert bindings == {} and audit == []
    assert fake.visible(world.general) == [], "nobody else saw the attempt"


async def test_a_thread_inherits_its_channel_profile_unless_it_has_its_own(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend("Once upon a time.")
    async with running(tmp_path, fake, backend) as (app, _):
        await answers(fake, app, await fake.invoke(
            world.channel_mod, world.general, "profile", "use", profile="kids"))
        (inherited,) = await answers(fake, app, await fake.invoke(
            world.member, world.thread, "profile", "show"))
        asked = await fake.say(world.member, world.thread, f"{mention(fake)} a story please")
        (story,) = await reply_to(fake, app, asked)
        await answers(fake, app, await fake.invoke(
            world.owner, world.thread, "profile", "use", profile="storyteller"))
        (own,) = await answers(fake, app, await fake.invoke(
            world.member, world.thread, "profile", "show"))
        (parent,) = await answers(fake, app, await fake.invoke(
            world.member, world.general, "profile", "show"))
    assert inherited.content.startswith("Profile 'kids' — set for this channel")
    assert story.channel_id == world.thread and story.content == "Once upon a time."
    kids = compose(app.library.stack(app.library.profile("kids").layers))
    system = backend.requests[0].messages[0]
    assert system.role == "system" and kids.system_prompt in system.content
    assert own.content.startswith("Profile 'storyteller' — set for this thread")
    assert parent.content.startswith("Profile 'kids' — set for this channel")


async def test_profile_and_layer_names_autocomplete(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend()) as (_app, _):
        profile = await fake.invoke(world.member, world.general, "profile", "use",
                                    autocomplete="profile", profile="ki")
        layers = await fake.invoke(world.member, world.general, "profile", "set",
                                   autocomplete="layers", layers="base hel")
        await fake.wait_for(lambda: profile.choices is not None and layers.choices is not None)
    assert profile.callback_type == layers.callback_type == 8
    assert [c["value"] for c in profile.choices or []] == ["kids"]
    assert [c["value"] for c in layers.choices or []] == ["base helpful"]


# -- what the model says ---------------------------------------------------------------


async def test_model_output_with_mass_and_role_mentions_pings_nobody(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    role = world.guild.roles[1]["id"]
    text = (f"Attention @everyone and @here! Ask <@&{role}> or <@{world.owner['id']}> "
            f"(or <@!{world.member['id']}>).")
    async with running(tmp_path, fake, FakeBackend(text)) as (app, _):
        asked = await fake.say(world.member, world.general, f"{mention(fake)} shout")
        (shown,) = await reply_to(fake, app, asked)
    assert not shown.pinged_anyone
    for request in fake.requests_to("POST|PATCH", rf"/channels/{world.general}/messages"):
        assert request.body["allowed_mentions"] == NO_PINGS
        content = request.body["content"]
        assert not re.search(r"@(everyone|here)|<@[!&]?\d+>", content), content
    assert shown.content.replace("\u200b", "") == text, "the text reads the same"


async def test_a_5000_character_reply_with_a_code_block_splits_cleanly(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    prose = "This sentence explains the code below in plenty of detail. " * 20
    code = "\n".join(f"    value_{n} = compute({n})  # step {n}" for n in range(70))
    text = f"{prose.strip()}\n\n```python\n{code}\n```\n\n{prose.strip()}"
    assert 4500 < len(text) < 5500 and text.index(FENCE) < 2000 < text.rindex(FENCE)
    async with running(tmp_path, fake, FakeBackend(text, piece_chars=200)) as (app, _):
        asked = await fake.say(world.member, world.general, f"{mention(fake)} explain")
        shown = await reply_to(fake, app, asked)
    contents = [m.content for m in shown]
    assert len(contents) == 3
    assert all(0 < len(c.strip()) and len(c) <= 2000 for c in contents)
    assert all(c.count(FENCE) % 2 == 0 for c in contents), "every code block is closed"
    assert contents[1].startswith("```python\n"), "the cut code block is reopened"
    assert all(r.status != 400 for r in fake.requests)
    code_lines = [line for c in contents for line in c.splitlines() if "value_" in line]
    assert code_lines == code.splitlines()


# -- Discord errors ---------------------------------------------------------------------


async def test_a_429_with_retry_after_is_honoured(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    fake.fail_next(world.general, 429, retry_after=0.2)
    async with running(tmp_path, fake, FakeBackend("Worth the wait.")) as (app, _):
        asked = await fake.say(world.member, world.general, f"{mention(fake)} hi")
        shown = await reply_to(fake, app, asked)
    posts = fake.requests_to("POST", rf"/channels/{world.general}/messages")
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.2
    assert [m.content for m in shown] == ["Worth the wait."]


async def test_a_long_429_fails_the_reply_at_once_and_the_bot_keeps_running(
    tmp_path: Path, fake: FakeDiscord, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake.fail_next(world.general, 429, retry_after=600)
    async with running(tmp_path, fake, FakeBackend("Never shown.")) as (app, _):
        await fake.say(world.member, world.general, f"{mention(fake)} hi")
        await fake.wait_for(lambda: bool(fake.requests_to("POST", rf"/{world.general}/mess")))
        await app.router.drain()
        asked = await fake.say(world.member, world.other, f"{mention(fake)} still there?")
        shown = await reply_to(fake, app, asked)
    assert fake.bot_messages(world.general) == []
    assert [m.content for m in shown] == ["Never shown."]
    posts = fake.requests_to("POST", rf"/channels/{world.general}/messages")
    assert [r.status for r in posts] == [429], "no retries piling up invalid requests"
    ours = [r for r in caplog.records if r.name.startswith(("bot", "adapters"))
            and r.levelno >= logging.WARNING]
    assert len(ours) == 1 and "wait 600 s" in ours[0].getMessage()
    assert fake.token not in caplog.text


async def test_no_permission_to_post_is_logged_once_without_the_token(
    tmp_path: Path, fake: FakeDiscord, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.forbidden.add(world.general)
    async with running(tmp_path, fake, FakeBackend("Hello.")) as (app, _):
        await fake.say(world.member, world.general, f"{mention(fake)} hi")
        await fake.wait_for(lambda: bool(fake.requests_to("POST", rf"/{world.general}/mess")))
        await app.router.drain()
        asked = await fake.say(world.member, world.other, f"{mention(fake)} hi")
        shown = await reply_to(fake, app, asked)
    assert [m.content for m in shown] == ["Hello."]
    assert len(fake.requests_to("POST", rf"/channels/{world.general}/messages")) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING
                and r.name.startswith(("bot", "adapters"))]
    assert len(warnings) == 1 and "may not post" in warnings[0].getMessage()
    assert fake.token not in caplog.text


async def test_a_reply_deleted_while_streaming_is_posted_again(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    reply = " ".join(f"Part{n}." for n in range(25))
    backend = FakeBackend(reply, pause_after=1)  # waits after the first piece
    async with running(tmp_path, fake, backend, edit_interval=SCALE) as (app, _):
        await fake.say(world.member, world.general, f"{mention(fake)} go")
        await fake.wait_for(lambda: bool(fake.bot_messages(world.general)))
        assert [m.content for m in fake.bot_messages(world.general)] == ["Part"]
        fake.delete(fake.bot_messages(world.general)[0].id)
        backend.release()
        await fake.wait_for(lambda: bool(fake.bot_messages(world.general)))
        await app.router.drain()
    assert [m.content for m in fake.bot_messages(world.general)] == [reply]
    assert fake.bot_messages(world.general)[0].reply_to is None, "the reply itself is gone"
    assert any(r.status == 404 for r in fake.requests_to("PATCH", "/messages/"))


async def test_a_rejected_token_is_a_config_error(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(connected_to(fake, token="not-the-token"), guild_ready_timeout=0.01)

    async def sink(_message: object) -> None:
        raise AssertionError("no message expected")

    with pytest.raises(ConfigError, match="CABOT_DISCORD_TOKEN"):
        await adapter.start(sink)


async def test_a_missing_message_content_intent_is_a_config_error(fake: FakeDiscord) -> None:
    fake.message_content = False
    adapter = DiscordAdapter(connected_to(fake), guild_ready_timeout=0.01)

    async def sink(_message: object) -> None:
        raise AssertionError("no message expected")

    with pytest.raises(ConfigError, match="Message Content Intent"):
        await adapter.start(sink)


async def test_a_sharded_client_connects_through_the_bot_gateway(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    async with running(tmp_path, fake, FakeBackend("Sharded hello."),
                       discord={"sharded": True}) as (app, _):
        asked = await fake.say(world.member, world.general, f"{mention(fake)} hi")
        shown = await reply_to(fake, app, asked)
    assert fake.requests_to("GET", "/gateway/bot")
    assert [m.content for m in shown] == ["Sharded hello."]


# -- the real engine --------------------------------------------------------------------


@pytest.mark.model
async def test_the_real_model_answers_a_mention(
    tmp_path: Path, fake: FakeDiscord, world: World, model_path: Path
) -> None:
    from bot.backends.llama import LlamaBackend

    backend = LlamaBackend(model_path, n_ctx=1024, n_threads=2, cache_bytes=0)
    async with running(tmp_path, fake, backend,
                       settings={"n_ctx": 1024, "reply_tokens": 32}) as (app, _):
        asked = await fake.say(world.member, world.general,
                               f"{mention(fake)} What is the capital of France?")
        shown = await reply_to(fake, app, asked, within=120)
    assert len(shown) == 1
    assert shown[0].content.strip() and len(shown[0].content) <= 2000
    assert not shown[0].pinged_anyone
    assert fake.requests_to("POST", rf"/channels/{world.general}/typing")


# -- the operator's floor and community locks ---------------------------------------------


async def test_a_server_lock_binds_every_channel_and_the_floor_binds_everyone(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend("Well, you bastard, here is a story.")
    core = {"floor_layers": ("family-friendly",)}
    async with running(tmp_path, fake, backend, settings=core) as (app, _):
        too_low = await fake.invoke(world.channel_mod, world.general, "profile", "lock",
                                    layers="no-links")
        (refused_lock,) = await answers(fake, app, too_low)
        locked = await fake.invoke(world.server_mod, world.general, "profile", "lock",
                                   layers="no-links")
        (done,) = await answers(fake, app, locked)
        clash = await fake.invoke(world.channel_mod, world.other, "profile", "use",
                                  profile="storyteller")
        (refused_use,) = await answers(fake, app, clash)
        switch = await fake.invoke(world.channel_mod, world.other, "profile", "use",
                                   profile="researcher")
        (switched,) = await answers(fake, app, switch)
        floor = await fake.invoke(world.owner, world.other, "profile", "unlock",
                                  layers="family-friendly")
        (refused_unlock,) = await answers(fake, app, floor)
        asked = await fake.say(world.member, world.other, f"{mention(fake)} a story please")
        (story,) = await reply_to(fake, app, asked)
        show = await fake.invoke(world.member, world.other, "profile", "show")
        (shown,) = await answers(fake, app, show)

    assert refused_lock.ephemeral and refused_lock.content.startswith("Only community moderators")
    assert "Locked no-links for the whole community" in done.content
    assert refused_use.ephemeral
    assert "'fiction' conflicts with 'family-friendly', which the operator" in refused_use.content
    assert "always with the community's locked no-links and the operator's floor " \
           "family-friendly" in switched.content
    assert "operator's floor" in refused_unlock.content
    assert "bastard" not in story.content and "here is a story" in story.content
    assert "family-friendly (built-in) [operator floor]" in shown.content
    assert "no-links (built-in) [locked by serena]" in shown.content
    request = backend.requests[-1]
    assert "bastard" in request.banned, "the floor's banned words reach the sampler"
    assert "Everyone here may be a child." in request.messages[0].content


# -- a flooding member -------------------------------------------------------------------


async def test_a_flood_of_500_messages_is_not_amplified(
    tmp_path: Path, fake: FakeDiscord, world: World
) -> None:
    backend = FakeBackend(lambda r: f"You said: {last_user_text(r)}")
    core = {"user_rate": 6, "flood_messages": 20}
    async with running(tmp_path, fake, backend, settings=core) as (app, _):
        for n in range(500):
            await fake.say(world.member, world.general, f"{mention(fake)} spam {n}")
        await fake.wait_for(lambda: len(backend.finished) >= 6, 30)
        await app.router.drain()
        asked = await fake.say(world.owner, world.general, f"{mention(fake)} a real question")
        (answer,) = await reply_to(fake, app, asked, within=30)
        elsewhere = await fake.say(world.member, world.other, f"{mention(fake)} hello?")
        await app.router.drain()
        shown = [m.content for m in fake.bot_messages(world.general)]
        other = [m.content for m in fake.bot_messages(world.other)]

    assert fake.invalid_requests == 0, "no 429s: the channel's budget was never overrun"
    assert len([t for t in shown if t.startswith("You said: max: spam")]) == 6
    assert len([t for t in shown if "faster than I can answer" in t]) == 1
    assert answer.content == "You said: olive: a real question"
    assert len(shown) == 8
    assert elsewhere.id and other == [], "the flooder stays unanswered in other channels too"
