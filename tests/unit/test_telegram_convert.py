"""Telegram updates as cabot's neutral messages: who is addressed, where, and who moderates.

The payloads are the fake Bot API's, parsed by python-telegram-bot itself; no network.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from telegram import ChatMember, Message, User
from telegram.error import BadRequest

from adapters.telegram.admins import ANONYMOUS_ADMIN_ID, AdminCache
from adapters.telegram.convert import (
    Target,
    command_for_other_bot,
    normalise_command,
    sender_of,
    strip_mentions,
    to_incoming,
)
from bot.messages import IncomingMessage, Scope
from tests.helpers.clock import FakeClock
from tests.helpers.fake_telegram import FORUM, GROUP, JSON, TOKEN, FakeTelegram

CHANNEL = -1005555555555


@dataclass
class World:
    fake: FakeTelegram
    me: User
    alice: JSON  # owns the groups
    bob: JSON  # a member
    carol: JSON  # administers GROUP
    channel: JSON

    def message(self, chat_id: int, sender: JSON, text: str, *, thread_id: int | None = None,
                reply_to: int | None = None, sender_chat: JSON | None = None,
                entities: list[JSON] | None = None) -> Message:
        """What python-telegram-bot makes of a message the fake delivers."""
        update = self.fake.post(chat_id, sender, text, thread_id=thread_id, reply_to=reply_to,
                                sender_chat=sender_chat, entities=entities)
        return Message.de_json(update["message"], None)

    def incoming(self, message: Message, *, moderator: bool = False) -> IncomingMessage:
        """The neutral message the adapter builds (mentions of the bot taken out)."""
        text, mentioned = strip_mentions(message, self.me)
        return to_incoming(message, self.me, normalise_command(text), mentions_bot=mentioned,
                           moderator=moderator)


@pytest.fixture
def world() -> World:
    fake = FakeTelegram(TOKEN)
    alice = fake.add_user(101, "Alice", "alice")
    bob = fake.add_user(102, "Bob", "bob")
    carol = fake.add_user(103, "Carol", "carol")
    fake.add_private_chat(bob)
    fake.add_group(GROUP, "Readers", owner=alice, admins=(carol,))
    fake.add_group(FORUM, "Forum", owner=alice, forum=True)
    channel = fake.add_channel(CHANNEL, "News")
    return World(fake, User.de_json(fake.me, None), alice, bob, carol, channel)


# -- where and who --------------------------------------------------------------------


def test_a_private_chat_addresses_the_bot_and_is_its_own_community(world: World) -> None:
    incoming = world.incoming(world.message(102, world.bob, "hello"), moderator=True)
    assert incoming.is_direct and not incoming.mentions_bot and not incoming.replies_to_bot
    assert incoming.scope == Scope(platform="telegram", community="102", channel="102")
    assert (incoming.author_id, incoming.author_name, incoming.text) == ("102", "Bob", "hello")
    assert incoming.moderates_channel and incoming.moderates_community
    assert Target.of(incoming) == Target(102, None, int(incoming.message_id), False)


def test_a_group_is_community_and_channel_and_its_replies_go_back_there(world: World) -> None:
    incoming = world.incoming(world.message(GROUP, world.bob, "@cabot_test_bot hi"))
    assert incoming.scope == Scope(platform="telegram", community=str(GROUP),
                                   channel=str(GROUP))
    assert not incoming.is_direct
    assert Target.of(incoming) == Target(GROUP, None, int(incoming.message_id), True)


def test_a_forum_topic_is_a_thread_and_its_creation_is_no_reply_to_the_bot(
    world: World
) -> None:
    topic = world.fake.create_topic(FORUM, "Books", world.alice)
    incoming = world.incoming(world.message(FORUM, world.bob, "hi", thread_id=topic))
    assert incoming.scope.thread == str(topic)
    assert not incoming.replies_to_bot  # every topic message "replies" to the topic's start
    assert Target.of(incoming).thread_id == topic


def test_a_reply_in_a_plain_group_carries_a_thread_id_but_is_no_topic(world: World) -> None:
    earlier = world.message(GROUP, world.alice, "a question")
    payload = {**world.fake.post(GROUP, world.bob, "an answer", reply_to=earlier.message_id
                                 )["message"], "message_thread_id": earlier.message_id}
    incoming = world.incoming(Message.de_json(payload, None))
    assert incoming.scope.thread is None


def test_a_reply_to_the_bot_addresses_it_and_a_reply_to_a_person_does_not(
    world: World
) -> None:
    answer = world.message(GROUP, world.fake.me, "an earlier answer")
    question = world.message(GROUP, world.alice, "anyone?")
    to_bot = world.incoming(world.message(GROUP, world.bob, "and?", reply_to=answer.message_id))
    to_alice = world.incoming(world.message(GROUP, world.bob, "me", reply_to=question.message_id))
    assert to_bot.replies_to_bot and not to_bot.mentions_bot
    assert not to_alice.replies_to_bot


# -- mentions and commands ------------------------------------------------------------


@pytest.mark.parametrize(("written", "left"), [
    ("@cabot_test_bot, what is X?", "what is X?"),
    ("hi @Cabot_Test_Bot", "hi"),  # any case
    ("🙂🙂 @cabot_test_bot  hi", "🙂🙂 hi"),  # entity offsets count UTF-16 units
])
def test_a_mention_of_the_bot_addresses_it_and_is_taken_out(
    world: World, written: str, left: str
) -> None:
    incoming = world.incoming(world.message(GROUP, world.bob, written))
    assert incoming.mentions_bot
    assert incoming.text == left


def test_a_text_mention_of_the_bot_counts_and_a_mention_of_someone_else_stays(
    world: World
) -> None:
    by_name = world.message(GROUP, world.bob, "cabot hi", entities=[
        {"type": "text_mention", "offset": 0, "length": 5, "user": world.fake.me}])
    assert world.incoming(by_name).mentions_bot
    assert world.incoming(by_name).text == "hi"
    other = world.incoming(world.message(GROUP, world.bob, "@alice hi"))
    assert not other.mentions_bot and other.text == "@alice hi"


@pytest.mark.parametrize(("text", "other_bot"), [
    ("/help@otherbot", True), ("/help@cabot_test_bot", False), ("/help@CABOT_TEST_BOT", False),
    ("/help", False), ("hello @otherbot", False),
])
def test_a_command_for_another_bot_is_recognised(world: World, text: str, other_bot: bool
                                                 ) -> None:
    assert command_for_other_bot(text, world.me) is other_bot


@pytest.mark.parametrize(("text", "command"), [
    ("/start", "/help"), ("/start@cabot_test_bot deep-link", "/help"),
    ("/startle", "/startle"), ("/profile show", "/profile show"),
])
def test_start_is_answered_as_help(text: str, command: str) -> None:
    assert normalise_command(text) == command


# -- authors ----------------------------------------------------------------------------


def test_an_anonymous_admin_writes_as_the_group_and_a_channel_as_itself(world: World) -> None:
    anonymous = world.fake.add_user(ANONYMOUS_ADMIN_ID, "Group", "GroupAnonymousBot", True)
    group = world.fake.chats[GROUP]
    as_group = sender_of(world.message(GROUP, anonymous, "hi", sender_chat=group))
    as_channel = sender_of(world.message(GROUP, anonymous, "hi", sender_chat=world.channel))
    assert (as_group.id, as_group.name, as_group.is_bot) == (
        f"chat{GROUP}", "an anonymous admin of Readers", False)
    assert (as_channel.id, as_channel.name, as_channel.is_bot) == (f"chat{CHANNEL}", "News", False)


def test_bots_and_a_bare_group_anonymous_bot_are_bots(world: World) -> None:
    other_bot = world.fake.add_user(900, "Other", "other_bot", True)
    anonymous = world.fake.add_user(ANONYMOUS_ADMIN_ID, "Group", "GroupAnonymousBot", True)
    assert world.incoming(world.message(GROUP, other_bot, "@cabot_test_bot hi")).is_bot
    assert world.incoming(world.message(GROUP, anonymous, "hi")).is_bot
    own = world.incoming(world.message(GROUP, world.fake.me, "my reply"))
    assert own.is_self and own.is_bot


# -- moderator flags ----------------------------------------------------------------------


class Lookups:
    """getChatAdministrators and getChatMember answered from the fake's groups."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.failing = False

    async def admins(self, chat_id: int) -> tuple[ChatMember, ...]:
        await asyncio.sleep(0)  # let commands arriving together find the lookup running
        if self.failing:
            raise BadRequest("Bad Request: member list is inaccessible")
        ids = [self.fake.owners[chat_id], *sorted(self.fake.admins[chat_id])]
        return tuple(self._member(chat_id, user_id) for user_id in ids)

    async def member(self, chat_id: int, user_id: int) -> ChatMember:
        return self._member(chat_id, user_id)

    def _member(self, chat_id: int, user_id: int) -> ChatMember:
        payload = self.fake.member_payload(chat_id, self.fake.users[user_id])
        return ChatMember.de_json(payload, None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lookups(world: World) -> Lookups:
    return Lookups(world.fake)


@pytest.fixture
def admins(lookups: Lookups, clock: FakeClock) -> AdminCache:
    return AdminCache(lookups.admins, lookups.member, ttl=60.0, clock=clock)


@pytest.mark.parametrize(("who", "moderates"), [("alice", True), ("carol", True),
                                                 ("bob", False)])
async def test_the_owner_and_administrators_moderate_a_group(
    world: World, admins: AdminCache, who: str, moderates: bool
) -> None:
    sender: JSON = getattr(world, who)
    assert await admins.moderates(world.message(GROUP, sender, "/profile use kids")) is moderates


async def test_everyone_moderates_their_private_chat_without_a_lookup(
    world: World, admins: AdminCache
) -> None:
    assert await admins.moderates(world.message(102, world.bob, "/profile use kids"))
    assert admins.lookups == 0


async def test_an_anonymous_admin_moderates_and_a_channel_or_a_bare_anonymous_bot_does_not(
    world: World, admins: AdminCache
) -> None:
    anonymous = world.fake.add_user(ANONYMOUS_ADMIN_ID, "Group", "GroupAnonymousBot", True)
    group = world.fake.chats[GROUP]
    command = "/profile use kids"
    assert await admins.moderates(world.message(GROUP, anonymous, command, sender_chat=group))
    assert not await admins.moderates(
        world.message(GROUP, anonymous, command, sender_chat=world.channel))
    assert not await admins.moderates(world.message(GROUP, anonymous, command))
    assert admins.lookups == 0


async def test_a_groups_admin_list_is_shared_and_reused_until_it_expires(
    world: World, admins: AdminCache, clock: FakeClock
) -> None:
    commands = [world.message(GROUP, who, "/profile show")
                for who in (world.alice, world.bob, world.carol)]
    assert await asyncio.gather(*map(admins.moderates, commands)) == [True, False, True]
    assert admins.lookups == 1  # three commands at once, one lookup
    clock.advance(59.0)
    await admins.moderates(commands[1])
    assert admins.lookups == 1
    world.fake.admins[GROUP].add(world.bob["id"])  # bob is promoted...
    clock.advance(2.0)
    assert await admins.moderates(commands[1])  # ...and it shows once the list expired
    assert admins.lookups == 2
    admins.forget(GROUP)
    await admins.moderates(commands[1])
    assert admins.lookups == 3


async def test_without_the_admin_list_each_sender_is_looked_up(
    world: World, lookups: Lookups, admins: AdminCache
) -> None:
    lookups.failing = True
    assert await admins.moderates(world.message(GROUP, world.carol, "/profile use kids"))
    assert not await admins.moderates(world.message(GROUP, world.bob, "/profile use kids"))
    assert admins.lookups == 4  # a failed list and a member lookup, twice
