"""A switch to a stack with probes: they run, the moderator is told, and block if asked."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import App
from bot.messages import Scope
from bot.store import Actor
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"switch_probes": True}


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> list[str]:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    return [shown.text for shown in chat.shown[before:]]


async def test_a_switch_is_announced_then_its_probes_are_reported(
        app: App, chat: RecordingAdapter, backend: FakeBackend) -> None:
    answers = await say(app, chat, "/profile use kids", moderator=True)
    assert answers[0].startswith("This channel now uses profile 'kids'")
    assert "🔎 Running 7 probes of profile 'kids'" in answers[0]
    assert answers[1] == "Probes of profile 'kids': ✅ All 7 probes passed."
    assert [s.ephemeral for s in chat.shown] == [False, True]
    # Six probes reached the model (the refusal probe never does), one at a time.
    assert len(backend.requests) == 6
    assert all(r.seed is not None for r in backend.requests)
    assert (await app.store.alignment.bindings_for(GENERAL))["channel"].profile == "kids"


async def test_a_stack_without_probes_switches_as_before(
        app: App, chat: RecordingAdapter, backend: FakeBackend) -> None:
    await app.store.alignment.save_custom_layer(
        "test", "guild", "quiet", 'name = "quiet"\ndescription = "No probes."\n',
        Actor(id="mod", name="mod"))
    answers = await say(app, chat, "/profile set quiet", moderator=True)
    assert answers == ["This channel now uses the layers quiet."]
    assert backend.requests == []


async def test_a_failing_probe_warns_by_default_and_blocks_when_the_community_says(
        app: App, chat: RecordingAdapter) -> None:
    # The fake backend ignores the yes-no grammar, as a server without grammar support
    # would: the probe catches it.
    warned = await say(app, chat, "/profile use yes-no", moderator=True)
    assert warned[0].startswith("This channel now uses profile 'yes-no'")
    assert warned[1].startswith("Probes of profile 'yes-no': ❌ 1 of 2 probes failed:")
    assert "yes-no/yes-or-no-only (matches ^(yes|no)$): FAIL: does not match ^(yes|no)$ — " \
           "the reply: 'Hello from the fake backend.'" in warned[1]
    assert "The switch stands" in warned[1]

    refused = await say(app, chat, "/profile probes block", moderator=True)
    assert "Only community moderators" in refused[0]
    assert (await say(app, chat, "/profile probes", community_moderator=True))[0].startswith(
        "Failing probes here only warn")
    setting = await say(app, chat, "/profile probes block", community_moderator=True)
    assert setting == ["From now on, failing probes block a switch: a stack whose probes "
                       "fail is not switched to."]

    await say(app, chat, "/profile use kids", moderator=True)
    blocked = await say(app, chat, "/profile use yes-no", channel="general", moderator=True)
    assert blocked[0].startswith("🔎 Running 2 probes of profile 'yes-no' before switching")
    assert blocked[1].startswith("Not switched: ❌ 1 of 2 probes failed:")
    assert "/profile probes warn" in blocked[1]
    assert (await app.store.alignment.bindings_for(GENERAL))["channel"].profile == "kids"
    audit = await app.store.alignment.audit_log("test", "guild")
    assert [e.action for e in audit[:2]] == ["bind channel", "setting probes"]
    assert audit[1].old is None and audit[1].new == "block"

    passing = await say(app, chat, "/profile use storyteller", moderator=True)
    assert passing[-1].startswith("This channel now uses profile 'storyteller'")
    assert passing[-1].endswith("✅ The probe passed.")
