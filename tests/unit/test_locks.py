"""The operator's floor and community locks, through the router: what moderators see and
what the model is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.errors import ConfigError
from bot.group_chat import GROUP_NOTE
from bot.messages import Scope
from bot.store import Store
from tests.helpers.apps import make_app, make_settings
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")
FICTION = Scope(platform="test", community="guild", channel="fiction")


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend("Reach me at john@example.com or @everyone, you bastard.")


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"floor_layers": ("no-mentions",)}


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: object) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))  # type: ignore[arg-type]
    return "\n".join(shown.text for shown in chat.shown[before:])


async def test_the_floor_is_in_every_stack_and_named_as_the_operators(
    app: App, chat: RecordingAdapter
) -> None:
    reply = await say(app, chat, "hello")
    assert "@everyone" not in reply and "everyone" in reply  # no-mentions redacted the ping
    await say(app, chat, "/profile set base --community", community_moderator=True)
    shown = await say(app, chat, "/profile show")
    assert "no-mentions (built-in) [operator floor]" in shown
    explained = await say(app, chat, "/profile explain")
    assert "Operator floor (in every stack; no moderator can remove it): no-mentions" in explained
    assert "@everyone" not in await say(app, chat, "hello again", channel="elsewhere",
                                        community="other-guild")


async def test_no_moderator_removes_the_floor(app: App, chat: RecordingAdapter) -> None:
    answer = await say(app, chat, "/profile unlock no-mentions", community_moderator=True)
    assert "operator's floor" in answer and "no moderator can remove it" in answer
    resolved = await app.resolver.resolve(GENERAL)
    assert "no-mentions" in resolved.plan.layers


async def test_a_community_moderator_locks_and_a_channel_cannot_drop_it(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    refused = await say(app, chat, "/profile lock family-friendly", moderator=True)
    assert refused.startswith("Only community moderators")
    locked = await say(app, chat, "/profile lock family-friendly no-links",
                       community_moderator=True, author="serena")
    assert "Locked family-friendly, no-links for the whole community" in locked

    # A channel moderator picks a stack without the locked layers: they stay in it.
    switched = await say(app, chat, "/profile use default", moderator=True, channel="fiction")
    assert "always with the community's locked family-friendly, no-links" in switched
    reply = await say(app, chat, "hi", channel="fiction")
    assert "bastard" not in reply and "john@example.com" not in reply
    request = backend.requests[-1]
    assert "bastard" in request.banned

    # A stack that clashes with a lock is refused, naming the lock and who can lift it.
    clash = await say(app, chat, "/profile use storyteller", moderator=True, channel="fiction")
    assert "'fiction' conflicts with 'family-friendly', which serena locked" in clash
    assert "/profile unlock family-friendly" in clash
    assert (await app.resolver.resolve(FICTION)).profile == "default"

    unlocked = await say(app, chat, "/profile unlock family-friendly", community_moderator=True)
    assert unlocked.startswith("Unlocked family-friendly")
    assert "now uses profile 'storyteller'" in await say(
        app, chat, "/profile use storyteller", moderator=True, channel="fiction")
    audit = await app.store.alignment.audit_log("test", "guild")
    oldest_first = [(e.action, e.new, e.old) for e in reversed(audit)]
    assert oldest_first[:2] == [
        ("lock", "family-friendly, no-links", None),
        ("bind channel", "profile 'default'", None),
    ]
    assert ("unlock", None, "family-friendly") in oldest_first


async def test_a_lock_tightens_but_a_channel_may_add_rules(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile lock concise", community_moderator=True)
    await say(app, chat, "/profile set base yes-no", moderator=True)
    await say(app, chat, "a question?")
    resolved = await app.resolver.resolve(GENERAL)
    assert resolved.plan.max_reply_chars is not None
    assert resolved.plan.max_reply_chars.layer == "concise"
    assert resolved.plan.grammar is not None and resolved.plan.grammar.layer == "yes-no"
    assert backend.requests[-1].grammar == resolved.plan.grammar.value


async def test_locks_survive_a_restart(tmp_path: Path) -> None:
    first = make_app(tmp_path, FakeBackend())
    adapter = RecordingAdapter()
    await first.start([adapter])
    await say(first, adapter, "/profile lock no-links", community_moderator=True)
    await first.stop()

    store = Store(tmp_path / "cabot.db")
    await store.open()
    try:
        assert [lock.layer for lock in await store.alignment.locks("test", "guild")] == [
            "no-links"]
    finally:
        await store.close()
    second = make_app(tmp_path, FakeBackend())
    await second.start([RecordingAdapter()])
    try:
        assert "no-links" in (await second.resolver.resolve(GENERAL)).plan.layers
    finally:
        await second.stop()


async def test_explain_is_exactly_what_the_model_is_given(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile lock concise", community_moderator=True)
    await say(app, chat, "/profile use kids", moderator=True)
    explained = await say(app, chat, "/profile explain")
    await say(app, chat, "Tell me a story.")
    system = backend.requests[-1].messages[0]
    assert system.role == "system"
    prompt_lines = explained.split("System prompt:\n", 1)[1].split("\n\nSampling:", 1)[0]
    fragments = [line.split("] ", 1)[1] for line in prompt_lines.splitlines()]
    # In a group channel cabot adds who-said-what to it, and explain says so.
    assert "\n\n".join([*fragments, GROUP_NOTE]) == system.content
    assert GROUP_NOTE in explained
    assert "at sampling (logit bias) and in the stream filter" in explained
    assert "on input: a matching message is refused" in explained


def test_a_floor_that_cannot_work_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CABOT_FLOOR_LAYERS.*no-such-layer"):
        App(make_settings(tmp_path, floor_layers=("no-such-layer",)), backend=FakeBackend())
    with pytest.raises(ConfigError, match=r"default profile 'storyteller'.*conflict"):
        App(make_settings(tmp_path, floor_layers=("family-friendly",),
                          default_profile="storyteller"), backend=FakeBackend())
