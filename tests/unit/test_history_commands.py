"""/profile history, rollback and restore through the router: what moderators see, who may
roll back where, the audit log, and floors and locks holding against an old version."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import App
from bot.messages import Scope
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"floor_layers": ("no-mentions",)}


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    return "\n".join(shown.text for shown in chat.shown[before:])


async def profile_here(app: App, scope: Scope = GENERAL) -> str | None:
    return (await app.resolver.resolve(scope)).profile


async def test_history_lists_who_changed_what_and_rollback_undoes_the_last_change(
    app: App, chat: RecordingAdapter
) -> None:
    assert "Nothing has changed in this channel" in await say(app, chat, "/profile history")
    await say(app, chat, "/profile use kids", moderator=True, author="chan")
    await say(app, chat, "/profile set base concise", moderator=True, author="mo")
    history = await say(app, chat, "/profile history")
    lines = history.splitlines()
    assert lines[0].startswith("History of this channel, newest first")
    assert "v2" in lines[1] and "mo: set → layers base, concise" in lines[1]
    assert "v1" in lines[2] and "chan: set → profile 'kids'" in lines[2]
    assert "v0  the start → nothing of its own (inherits)" in lines[3]

    undone = await say(app, chat, "/profile rollback", moderator=True, author="mo")
    assert "This channel is back to v1: profile 'kids'. This is v3" in undone
    assert "Here that means: + helpful; + family-friendly" in undone
    assert await profile_here(app) == "kids"
    to_start = await say(app, chat, "/profile rollback v0", moderator=True, author="mo")
    assert "back to v0: nothing of its own (inherits)" in to_start
    assert await profile_here(app) == "default"
    audit = await say(app, chat, "/profile audit")
    assert "mo: rollback channel to v0 in general: profile 'kids' → nothing" in audit
    assert "mo: rollback channel to v1 in general: layers base, concise → profile 'kids'" in audit


async def test_only_moderators_of_the_scope_roll_it_back(
    app: App, chat: RecordingAdapter
) -> None:
    await say(app, chat, "/profile use kids", moderator=True)
    await say(app, chat, "/profile use tutor --community", community_moderator=True)
    member = await say(app, chat, "/profile rollback")
    assert member.startswith("Only moderators")
    channel_mod = await say(app, chat, "/profile rollback --community", moderator=True)
    assert channel_mod.startswith("Only community moderators")
    assert await profile_here(app) == "kids"
    assert len(await app.store.versions.place_history(GENERAL, "community")) == 1
    done = await say(app, chat, "/profile rollback --community", community_moderator=True)
    assert done.startswith("The whole community is back to v0")


async def test_a_version_that_clashes_with_a_lock_now_is_refused_with_the_lock_message(
    app: App, chat: RecordingAdapter
) -> None:
    await say(app, chat, "/profile use storyteller", moderator=True)
    await say(app, chat, "/profile use default", moderator=True)
    await say(app, chat, "/profile lock family-friendly", community_moderator=True,
              author="serena")
    refused = await say(app, chat, "/profile rollback v1", moderator=True)
    assert "'fiction' conflicts with 'family-friendly', which serena locked" in refused
    assert "/profile unlock family-friendly" in refused
    assert await profile_here(app) == "default"
    assert [v.number for v in await app.store.versions.place_history(GENERAL, "channel")] == [
        2, 1]


async def test_a_community_rollback_brings_back_its_locks(
    app: App, chat: RecordingAdapter
) -> None:
    await say(app, chat, "/profile lock no-links", community_moderator=True)
    await say(app, chat, "/profile unlock no-links", community_moderator=True)
    history = await say(app, chat, "/profile history --community")
    assert "locked: no-links" in history and "/profile rollback <version> --community" in history
    back = await say(app, chat, "/profile rollback --community", community_moderator=True)
    assert "back to v1: nothing of its own (inherits); locked: no-links" in back
    assert "no-links" in (await app.resolver.resolve(GENERAL)).plan.layers


async def test_unknown_versions_and_no_op_rollbacks_change_nothing(
    app: App, chat: RecordingAdapter
) -> None:
    nothing = await say(app, chat, "/profile rollback", moderator=True)
    assert "Nothing has changed in this channel yet" in nothing
    await say(app, chat, "/profile use kids", moderator=True)
    assert "has no version 7; it is at v1" in await say(app, chat, "/profile rollback 7",
                                                         moderator=True)
    assert "'seven' is not a version number" in await say(app, chat,
                                                          "/profile rollback seven",
                                                          moderator=True)
    assert "already holds what v1 held" in await say(app, chat, "/profile rollback v1",
                                                    moderator=True)
    assert len(await app.store.versions.place_history(GENERAL, "channel")) == 1


async def test_a_thread_has_its_own_history(app: App, chat: RecordingAdapter) -> None:
    await say(app, chat, "/profile use kids", moderator=True, thread="t1")
    await say(app, chat, "/profile use tutor", moderator=True)
    thread = await say(app, chat, "/profile history", thread="t1")
    assert "History of this thread" in thread and "profile 'kids'" in thread
    assert "tutor" not in thread
    await say(app, chat, "/profile rollback", moderator=True, thread="t1")
    assert await profile_here(app, GENERAL.model_copy(update={"thread": "t1"})) == "tutor"


async def test_community_profiles_keep_their_definitions_and_can_be_restored(
    app: App, chat: RecordingAdapter
) -> None:
    await say(app, chat, "/profile define club base helpful", community_moderator=True)
    await say(app, chat, "/profile define club base concise", community_moderator=True,
              author="bo")
    history = await say(app, chat, "/profile history club")
    assert "v2" in history and "bo: define → base, concise" in history
    assert "is built-in" in await say(app, chat, "/profile history kids")
    refused = await say(app, chat, "/profile restore club v1", moderator=True)
    assert refused.startswith("Only community moderators")
    restored = await say(app, chat, "/profile restore club v1", community_moderator=True)
    assert "defined as in v1 again: base, helpful (now v3)" in restored
    library = await app.resolver.library_for("test", "guild")
    assert library.profile("club").layers == ("base", "helpful")
    audit = await say(app, chat, "/profile audit")
    assert "rollback profile to v1" in audit
