"""Personal layers: what moderators allow, what members pick, and what the model is given.

The pure composition (only ever adding restrictions) first, then the commands through the
router: who may allow, what a member may pick, and whose replies it changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import App
from bot.messages import IncomingMessage, Scope
from profiles import CompositionError, Layer, compose
from profiles.models import RedactRule, Rules, Sampling
from profiles.personal import compose_personal, find_personal_conflict
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")
ITALIAN_PROMPT = "Rispondi sempre in italiano."


def layer(name: str, **fields: object) -> Layer:
    return Layer.model_validate({"name": name, "description": f"{name} layer", **fields})


# -- the composition ----------------------------------------------------------------------


def test_personal_layers_add_rules_on_top_and_never_drop_one() -> None:
    place = [layer("a", prompt="Be kind.", rules=Rules(banned=("darn",), max_reply_chars=300)),
             layer("b", rules=Rules(redact=(RedactRule(pattern="x+"),)))]
    mine = [layer("mine", prompt="Be brief.", rules=Rules(banned=("heck",),
                                                          max_reply_chars=900))]
    stack, plan = compose_personal(place, compose(place), mine)
    assert [item.name for item in stack] == ["a", "b", "mine"]
    assert plan.system_prompt == "Be kind.\n\nBe brief."
    assert {s.value for s in plan.banned} == {"darn", "heck"}
    assert plan.max_reply_chars is not None and plan.max_reply_chars.value == 300
    assert len(plan.redact) == 1


def test_a_personal_layer_cannot_lengthen_replies_past_the_place() -> None:
    place = [layer("short", sampling=Sampling(max_tokens=100))]
    longer = [layer("long", sampling=Sampling(max_tokens=900, temperature=1.2))]
    _, plan = compose_personal(place, compose(place), longer)
    assert plan.sampling["max_tokens"].value == 100 and plan.sampling["max_tokens"].layer == "short"
    assert plan.sampling["temperature"].value == 1.2  # style is the member's
    shorter = [layer("tiny", sampling=Sampling(max_tokens=20))]
    assert compose_personal(place, compose(place), shorter)[1].sampling["max_tokens"].value == 20


def test_clashes_with_the_place_are_found_and_repeats_are_no_ops() -> None:
    place = [layer("formal", conflicts_with=("humor",)), layer("json", rules=Rules(grammar="x"))]
    clash = find_personal_conflict(place, [layer("humor")])
    assert clash is not None and (clash.layer, clash.other) == ("humor", "formal")
    grammar = find_personal_conflict(place, [layer("yes-no", rules=Rules(grammar="y"))])
    assert grammar is not None and grammar.reason.startswith("sets an output grammar")
    with pytest.raises(CompositionError):
        compose_personal(place, compose(place), [layer("humor")])
    stack, plan = compose_personal(place, compose(place), [place[0]])
    assert stack == tuple(place) and plan == compose(place)


# -- the commands ---------------------------------------------------------------------------


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    return "\n".join(shown.text for shown in chat.shown[before:])


async def chat_as(app: App, chat: RecordingAdapter, backend: FakeBackend, author: str,
                  text: str = "ciao", **kwargs: Any) -> str:
    """The system prompt the model got for ``author``'s message."""
    await say(app, chat, text, author=author, **kwargs)
    return backend.requests[-1].messages[0].content


async def test_a_member_picks_an_allowed_layer_for_their_own_replies_only(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    refused = await say(app, chat, "/profile allow italian", author="max")
    assert refused.startswith("Only moderators")
    allowed = await say(app, chat, "/profile allow italian humor", moderator=True, author="mo")
    assert "Members may now pick italian, humor for themselves in this channel" in allowed

    assert "not allowed here" in await say(app, chat, "/me use french", author="max")
    picked = await say(app, chat, "/me use italian", author="max")
    assert "now add italian" in picked
    assert all(shown.ephemeral for shown in chat.shown[-1:])

    assert ITALIAN_PROMPT in await chat_as(app, chat, backend, "max")
    assert ITALIAN_PROMPT not in await chat_as(app, chat, backend, "ada")
    assert ITALIAN_PROMPT not in await chat_as(app, chat, backend, "max", channel="other"), \
        "allowed for one channel, used in that channel only"

    shown = await say(app, chat, "/profile show", author="max")
    assert "italian (built-in) [yours: only your replies]" in shown
    assert "italian" not in await say(app, chat, "/profile show", author="ada")
    explained = await say(app, chat, "/profile explain", author="max")
    assert "[italian] " + ITALIAN_PROMPT in explained

    me = await say(app, chat, "/me", author="max")
    assert "Your personal layers: italian." in me and "Allowed here: italian, humor" in me
    assert "No daily token budget applies to you here." in me

    reset = await say(app, chat, "/me reset", author="max")
    assert "Dropped your personal layers (italian)" in reset
    assert ITALIAN_PROMPT not in await chat_as(app, chat, backend, "max")

    actions = [(e.actor_name, e.action, e.old, e.new)
               for e in await app.store.alignment.audit_log("test", "guild")]
    assert ("mo", "allow personal layers channel", None, "italian, humor") in actions
    assert ("max", "personal layers", None, "italian") in actions
    assert ("max", "personal layers", "italian", None) in actions


async def test_a_personal_layer_that_clashes_is_refused_naming_what_is_in_the_way(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile use support", moderator=True)  # formal, concise, ...
    await say(app, chat, "/profile allow humor italian", moderator=True)
    clash = await say(app, chat, "/me use humor", author="max")
    assert "Your layer 'humor' conflicts with 'formal', which this channel uses" in clash
    assert await app.store.members.chosen("test", "guild", "max") == ()

    # A lock binds personal stacks too: a member can't pick around it.
    locked = await say(app, chat, "/profile lock family-friendly", community_moderator=True,
                       author="serena")
    assert "Locked family-friendly" in locked
    await say(app, chat, "/profile use storyteller", moderator=True, channel="fiction")
    refused = await say(app, chat, "/profile allow fiction --community",
                        community_moderator=True)
    assert "No member could use it here" in refused and "serena locked" in refused

    # Picked where allowed, the layer adds to the lock's rules and removes none.
    await say(app, chat, "/me use italian", author="max")
    await say(app, chat, "hello", author="max")
    request = backend.requests[-1]
    assert ITALIAN_PROMPT in request.messages[0].content
    assert "bastard" in request.banned, "the locked layer's banned words still bind"


async def test_allowing_for_the_community_needs_a_community_moderator(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    refused = await say(app, chat, "/profile allow italian --community", moderator=True)
    assert refused.startswith("Only community moderators")
    await say(app, chat, "/profile allow italian --community", community_moderator=True)
    await say(app, chat, "/me use italian", author="max", channel="elsewhere")
    assert ITALIAN_PROMPT in await chat_as(app, chat, backend, "max", channel="other")

    # A channel moderator cannot disallow what the community allows; they are told where.
    kept = await say(app, chat, "/profile disallow italian", moderator=True)
    assert "italian is allowed for the whole community" in kept
    assert "/profile disallow italian --community" in kept
    gone = await say(app, chat, "/profile disallow italian --community",
                     community_moderator=True)
    assert "Members can no longer pick italian in the whole community" in gone
    assert ITALIAN_PROMPT not in await chat_as(app, chat, backend, "max")
    assert "italian (not allowed here)" in await say(app, chat, "/me", author="max")
    note = await say(app, chat, "/profile show", author="max")
    assert "Your layer italian is not allowed here" in note


async def test_personal_layers_apply_in_a_direct_message_its_owner_allows(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    dm = IncomingMessage(scope=Scope(platform="test", community="dm-max", channel="dm"),
                         message_id="1", author_id="max", author_name="max", text="",
                         is_direct=True, moderates_channel=True, moderates_community=True)
    for text in ("/profile allow italian", "/me use italian", "ciao"):
        await app.router.handle(chat, dm.model_copy(update={"text": text}))
    assert ITALIAN_PROMPT in backend.requests[-1].messages[0].content
    assert backend.requests[-1].messages[-1].content == "ciao", "a DM names no one"
