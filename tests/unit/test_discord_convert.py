"""Discord payloads as cabot's neutral messages: who is addressed, where, and who moderates.

The payloads are the fake's wire format, parsed by discord.py itself with no connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from adapters.discord.convert import (
    INTERACTION_KEY,
    LOOKALIKE_AT,
    MESSAGE_KEY,
    ZERO_WIDTH_SPACE,
    incoming_from_interaction,
    incoming_from_message,
    is_chat,
    neutralize_mentions,
)
from bot.messages import IncomingMessage, Scope
from tests.helpers.fake_discord import MANAGE_CHANNELS, MANAGE_GUILD, FakeDiscord
from tests.helpers.fake_discord_state import OfflineDiscord
from tests.helpers.fake_discord_wire import ADMINISTRATOR, JSON


@dataclass
class World:
    fake: FakeDiscord
    discord: OfflineDiscord
    guild: str
    owner: JSON
    admin: JSON
    channel_mod: JSON
    server_mod: JSON
    member: JSON
    other_bot: JSON
    general: str
    other: str
    thread: str
    bot_role: str

    def said(self, author: JSON, channel: str, content: str, *,
             reply_to: str | None = None) -> IncomingMessage:
        """What the adapter hands the core when ``author`` writes ``content``."""
        message = self.discord.message(
            self.fake.new_message(author, channel, content, reply_to=reply_to))
        return incoming_from_message(message, self.discord.bot_id, message.channel)

    def invoked(self, author: JSON, channel: str, text: str) -> IncomingMessage:
        """What the adapter hands the core when ``author`` runs ``/profile use``."""
        interaction = self.fake.new_interaction(author, channel, "profile", "use", profile="kids")
        return incoming_from_interaction(self.discord.interaction(interaction), text, "handle")

    @property
    def bot(self) -> str:
        return f"<@{self.fake.bot['id']}>"


@pytest.fixture
def world() -> World:
    fake = FakeDiscord(clock=time.monotonic)
    owner = fake.make_user("olive")
    guild = fake.add_guild("book club", owner)
    bot_role = fake.snowflake()  # the role Discord manages for the bot itself
    guild.roles.append({"id": bot_role, "name": "cabot", "permissions": "0",
                        "tags": {"bot_id": fake.bot["id"]}})
    admins = fake.add_role(guild, "admins", ADMINISTRATOR)
    channel_mods = fake.add_role(guild, "channel mods", MANAGE_CHANNELS)
    server_mods = fake.add_role(guild, "server mods", MANAGE_GUILD)
    admin, channel_mod = fake.make_user("ada"), fake.make_user("chan")
    server_mod, member = fake.make_user("serena"), fake.make_user("max")
    other_bot = fake.make_user("otherbot", bot=True)
    fake.add_member(guild, admin, [admins])
    fake.add_member(guild, channel_mod, [channel_mods])
    fake.add_member(guild, server_mod, [server_mods])
    fake.add_member(guild, member)
    fake.add_member(guild, other_bot)
    general = fake.add_channel(guild, "general")
    other = fake.add_channel(guild, "other")
    # In #other alone, max may manage the channel.
    guild.channels[-1]["permission_overwrites"] = [
        {"id": member["id"], "type": 1, "allow": str(MANAGE_CHANNELS), "deny": "0"}]
    thread = fake.add_thread(guild, general, "spoilers")
    fake.commands["profile"] = {"id": fake.snowflake(), "name": "profile"}
    discord = OfflineDiscord(fake)
    discord.load(guild)
    return World(fake, discord, guild.id, owner, admin, channel_mod, server_mod, member,
                 other_bot, general, other, thread, bot_role)


# -- messages -------------------------------------------------------------------------


def test_a_mention_addresses_the_bot_and_is_taken_out_of_the_text(world: World) -> None:
    incoming = world.said(world.member, world.general, f"{world.bot}  what is   up?")
    assert incoming.text == "what is up?"
    assert incoming.mentions_bot and not incoming.replies_to_bot and not incoming.is_direct
    assert incoming.scope == Scope(platform="discord", community=world.guild,
                                   channel=world.general)
    assert (incoming.author_id, incoming.author_name) == (world.member["id"], "max")
    assert not incoming.is_bot and not incoming.is_self
    assert MESSAGE_KEY in incoming.extras


@pytest.mark.parametrize("written", ["<@!{bot}> hi", "<@&{role}> hi", "hi <@{bot}>"])
def test_the_nickname_and_role_mentions_address_the_bot_too(world: World, written: str) -> None:
    text = written.format(bot=world.fake.bot["id"], role=world.bot_role)
    incoming = world.said(world.member, world.general, text)
    assert incoming.mentions_bot
    assert incoming.text == "hi"


@pytest.mark.parametrize("written", ["@everyone hi", "@here hi", "<@{someone}> hi", "hi"])
def test_other_mentions_do_not_address_the_bot_and_stay(world: World, written: str) -> None:
    text = written.format(someone=world.owner["id"])
    incoming = world.said(world.member, world.general, text)
    assert not incoming.mentions_bot
    assert incoming.text == text


def test_a_reply_to_the_bot_is_addressed_and_a_reply_to_a_person_is_not(world: World) -> None:
    answer = world.fake.new_message(world.fake.bot, world.general, "An earlier answer.")
    question = world.fake.new_message(world.owner, world.general, "Anyone?")
    to_bot = world.said(world.member, world.general, "And then?", reply_to=answer.id)
    to_owner = world.said(world.member, world.general, "Me!", reply_to=question.id)
    assert to_bot.replies_to_bot and not to_bot.mentions_bot
    assert not to_owner.replies_to_bot


def test_a_thread_keeps_its_parent_channel_so_it_inherits_its_profile(world: World) -> None:
    incoming = world.said(world.member, world.thread, f"{world.bot} spoil it")
    assert incoming.scope == Scope(platform="discord", community=world.guild,
                                   channel=world.general, thread=world.thread)


def test_a_dm_is_its_own_community_and_its_author_moderates_it(world: World) -> None:
    incoming = world.said(world.member, world.fake.dm_channel(world.member), "hello")
    assert incoming.is_direct
    assert incoming.scope.community == f"dm-{world.member['id']}"
    assert incoming.moderates_channel and incoming.moderates_community


def test_bots_and_the_bot_itself_are_marked(world: World) -> None:
    assert world.said(world.other_bot, world.general, f"{world.bot} hi").is_bot
    own = world.said(world.fake.bot, world.general, "my own reply")
    assert own.is_self and own.is_bot


@pytest.mark.parametrize(("who", "channel", "community"), [
    ("owner", True, True),
    ("admin", True, True),
    ("server_mod", True, True),
    ("channel_mod", True, False),
    ("member", False, False),
])
def test_moderator_flags_come_from_the_authors_permissions(
    world: World, who: str, channel: bool, community: bool
) -> None:
    author: JSON = getattr(world, who)
    incoming = world.said(author, world.general, f"{world.bot} /profile use kids")
    assert (incoming.moderates_channel, incoming.moderates_community) == (channel, community)


def test_a_channel_permission_overwrite_makes_a_moderator_of_that_channel_only(
    world: World
) -> None:
    there = world.said(world.member, world.other, "/profile use kids")
    elsewhere = world.said(world.member, world.general, "/profile use kids")
    assert (there.moderates_channel, there.moderates_community) == (True, False)
    assert (elsewhere.moderates_channel, elsewhere.moderates_community) == (False, False)


@pytest.mark.parametrize(("kind", "chat"), [(0, True), (19, True), (6, False), (18, False),
                                            (7, False)])
def test_only_what_people_write_is_chat(world: World, kind: int, chat: bool) -> None:
    """Default and reply messages are talk; pins (6), thread starts (18), joins (7) not."""
    message = world.fake.new_message(world.member, world.general, "x")
    assert is_chat(world.discord.message(message, type=kind)) is chat


# -- slash commands -------------------------------------------------------------------


def test_a_slash_command_is_addressed_command_text(world: World) -> None:
    incoming = world.invoked(world.member, world.general, "/profile use kids")
    assert incoming.text == "/profile use kids"
    assert incoming.mentions_bot and not incoming.is_direct
    assert incoming.scope == Scope(platform="discord", community=world.guild,
                                   channel=world.general)
    assert incoming.extras == {INTERACTION_KEY: "handle"}


@pytest.mark.parametrize(("who", "community"), [("server_mod", True), ("member", False),
                                                 ("owner", True)])
def test_a_slash_command_uses_the_permissions_discord_resolved(
    world: World, who: str, community: bool
) -> None:
    incoming = world.invoked(getattr(world, who), world.general, "/profile use kids")
    assert incoming.moderates_community is community


def test_a_slash_command_in_a_thread_or_a_dm_is_scoped_there(world: World) -> None:
    in_thread = world.invoked(world.member, world.thread, "/profile use kids")
    assert (in_thread.scope.channel, in_thread.scope.thread) == (world.general, world.thread)
    in_dm = world.invoked(world.member, world.fake.dm_channel(world.member), "/profile use kids")
    assert in_dm.is_direct and in_dm.scope.community == f"dm-{world.member['id']}"
    assert in_dm.moderates_channel and in_dm.moderates_community


# -- outgoing text --------------------------------------------------------------------


def test_mentions_in_outgoing_text_ping_nobody_but_read_the_same() -> None:
    text = "@everyone and @here: <@123>, <@!456> and <@&789>"
    safe = neutralize_mentions(text, 2000)
    assert safe.replace(ZERO_WIDTH_SPACE, "") == text
    for mention in ("@everyone", "@here", "<@123>", "<@!456>", "<@&789>"):
        assert mention not in safe


def test_a_full_message_keeps_its_length_with_a_lookalike_at() -> None:
    text = "@here " + "x" * 1994
    safe = neutralize_mentions(text, 2000)
    assert len(safe) == 2000
    assert safe.startswith(f"{LOOKALIKE_AT}here")
