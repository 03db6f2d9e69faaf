"""The router and commands, on a scripted backend: what users see and what the model is given."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.app import App
from bot.errors import ForbiddenError
from bot.messages import OutgoingMessage, Scope, SentMessage
from bot.router import FORBIDDEN_QUIET, ChatLimits, Router
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.recording import RecordingAdapter, message


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(lambda r: f"You said: {last_user_text(r)}")


async def send(app: App, adapter: RecordingAdapter, *args: object, **kwargs: object) -> None:
    await app.router.handle(adapter, message(*args, **kwargs))  # type: ignore[arg-type]


GENERAL = Scope(platform="test", community="guild", channel="general")


async def test_addressed_message_gets_a_streamed_reply(
    app: App, chat: RecordingAdapter
) -> None:
    await send(app, chat, "hello bot")
    assert chat.texts() == ["You said: user: hello bot"]
    versions = chat.shown[0].versions
    assert len(versions) > 1 and versions[0] != versions[-1]  # it streamed


async def test_unaddressed_and_bot_messages_are_ignored_until_answer_always(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await send(app, chat, "just chatting", addressed=False)
    await send(app, chat, "I am a bot", is_bot=True)
    assert chat.texts() == [] and backend.requests == []
    await send(app, chat, "/answer always", addressed=False)
    assert "Only moderators" in chat.texts()[-1]
    await send(app, chat, "/answer always", moderator=True, addressed=False)
    await send(app, chat, "now?", addressed=False)
    assert chat.texts()[-1] == "You said: user: now?"


async def test_non_moderator_cannot_switch_and_store_is_unchanged(
    app: App, chat: RecordingAdapter
) -> None:
    await send(app, chat, "/profile use kids")
    assert "Only moderators" in chat.texts()[-1]
    assert chat.shown[-1].ephemeral
    assert await app.store.alignment.bindings_for(GENERAL) == {}
    assert await app.store.alignment.audit_log("test", "guild") == []


async def test_moderator_switch_is_stored_audited_and_shown(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await send(app, chat, "/profile explain")
    before = chat.texts()[-1]
    await send(app, chat, "/profile use kids", moderator=True, author="mod")
    assert chat.texts()[-1].startswith("This channel now uses profile 'kids'")
    assert not chat.shown[-1].ephemeral  # everyone sees a profile change
    binding = (await app.store.alignment.bindings_for(GENERAL))["channel"]
    assert binding.profile == "kids"
    audit = await app.store.alignment.audit_log("test", "guild")
    assert [(a.actor_name, a.old, a.new) for a in audit] == [("mod", None, "profile 'kids'")]
    await send(app, chat, "/profile show")
    assert chat.texts()[-1].startswith("Profile 'kids' — set for this channel")
    assert "family-friendly (built-in)" in chat.texts()[-1]
    shown = len(chat.texts())
    await send(app, chat, "/profile explain")
    after = "\n".join(chat.texts()[shown:])  # a long explanation comes in several messages
    assert after != before
    assert "[family-friendly] Everyone here may be a child." in after
    assert "max reply length = 600 characters  (concise)" in after
    # What the model is given changed too.
    await send(app, chat, "hi")
    system = backend.requests[-1].messages[0]
    assert system.role == "system" and "Everyone here may be a child." in system.content
    assert backend.requests[-1].temperature == 0.6
    assert "fuck" in backend.requests[-1].banned


async def test_community_scope_needs_a_community_moderator(
    app: App, chat: RecordingAdapter
) -> None:
    other = Scope(platform="test", community="guild", channel="other")
    await send(app, chat, "/profile use researcher --community", moderator=True)
    assert "Only community moderators" in chat.texts()[-1]
    await send(app, chat, "/profile use researcher --community", community_moderator=True)
    assert chat.texts()[-1].startswith("The whole community now uses profile 'researcher'")
    assert (await app.resolver.resolve(other)).profile == "researcher"


async def test_set_reset_and_thread_inheritance(app: App, chat: RecordingAdapter) -> None:
    await send(app, chat, "/profile set base humor concise", moderator=True)
    assert chat.texts()[-1] == "This channel now uses the layers base, humor, concise."
    await send(app, chat, "/profile show", thread="t1")
    assert chat.texts()[-1].startswith("A custom layer stack — set for this channel")
    await send(app, chat, "/profile use storyteller", thread="t1", moderator=True)
    assert chat.texts()[-1].startswith("This thread now uses profile 'storyteller'")
    await send(app, chat, "/profile reset", moderator=True)
    assert "now follows the global default: 'default'" in chat.texts()[-1]
    thread = GENERAL.model_copy(update={"thread": "t1"})
    assert (await app.resolver.resolve(thread)).profile == "storyteller"


async def test_bad_commands_get_helpful_answers(app: App, chat: RecordingAdapter) -> None:
    await send(app, chat, "/profile use storyteler", moderator=True)
    assert "Did you mean 'storyteller'" in chat.texts()[-1]
    await send(app, chat, "/profile set base formal humor", moderator=True)
    assert "'formal' and 'humor' conflict" in chat.texts()[-1]
    await send(app, chat, "/profile set base famly-friendly", moderator=True)
    assert "Did you mean 'family-friendly'" in chat.texts()[-1]
    await send(app, chat, "/profile shwo")
    assert "did you mean 'show'" in chat.texts()[-1]
    assert await app.store.alignment.bindings_for(GENERAL) == {}


async def test_define_a_community_profile(app: App, chat: RecordingAdapter) -> None:
    await send(app, chat, "/profile define quiet base concise", moderator=True)
    assert "Only community moderators" in chat.texts()[-1]
    await send(app, chat, "/profile define quiet base concise", community_moderator=True)
    await send(app, chat, "/profile list")
    assert "quiet [this community]" in chat.texts()[-1]
    await send(app, chat, "/profile use quiet", moderator=True)
    assert (await app.resolver.resolve(GENERAL)).plan.layers == ("base", "concise")


async def test_memory_is_per_channel_and_forget_clears_it(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await send(app, chat, "my name is Ada", channel="a")
    await send(app, chat, "what is my name?", channel="a")
    seen_a = [m.content for m in backend.requests[-1].messages]
    assert "user: my name is Ada" in seen_a and "You said: user: my name is Ada" in seen_a
    await send(app, chat, "hello", channel="b")
    assert all("Ada" not in m.content for m in backend.requests[-1].messages)
    await send(app, chat, "hello", channel="a", community="other-guild")
    assert all("Ada" not in m.content for m in backend.requests[-1].messages)
    await send(app, chat, "/forget", channel="a")
    assert chat.texts()[-1] == "Forgot this channel's conversation (4 messages)."
    await send(app, chat, "again", channel="a")
    assert [m.role for m in backend.requests[-1].messages] == ["system", "user"]


async def test_refusal_pattern_answers_without_the_model(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await send(app, chat, "/profile use kids", moderator=True)
    count = len(backend.requests)
    await send(app, chat, "show me some NSFW stuff")
    assert chat.texts()[-1] == "That topic isn't for this channel. Let's talk about something else!"
    assert len(backend.requests) == count


async def test_banned_words_and_links_never_shown_and_length_capped(
    tmp_path: Path,
) -> None:
    reply = ("Damn, what a crap idea. Visit https://bad.example.com/x now. " * 30).strip()
    backend = FakeBackend(reply, piece_chars=3)
    app = make_app(tmp_path, backend)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        await send(app, chat, "/profile use kids", moderator=True)
        await send(app, chat, "say something")
    finally:
        await app.stop()
    for version in chat.every_version():
        lowered = version.lower()
        assert "damn" not in lowered and "crap" not in lowered and "http" not in lowered
    final = chat.texts()[-1]
    assert "[link removed]" in final and len(final) <= 600 and final.endswith("…")


async def test_failure_is_reported_and_the_next_message_works(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    backend.fail_with = "The model failed while generating (RuntimeError)."
    await send(app, chat, "hello")
    assert chat.texts()[-1] == "⚠️ The model failed while generating (RuntimeError)."
    backend.fail_with = None
    await send(app, chat, "hello again")
    assert chat.texts()[-1] == "You said: user: hello again"


async def test_a_full_channel_queue_answers_busy(tmp_path: Path) -> None:
    backend = FakeBackend(gated=True)
    app = make_app(tmp_path, backend, queue_per_channel=1)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        sink = chat.sink
        assert sink is not None
        await sink(message("first"))
        await asyncio.wait_for(backend.wait_for_requests(1), 5)  # the first job is running
        await sink(message("second", author="bob"))
        await asyncio.wait_for(chat.wait_until(lambda: len(chat.texts()) >= 1), 5)
        await sink(message("third"))
        await asyncio.wait_for(chat.wait_until(lambda: len(chat.texts()) >= 2), 5)
        assert sorted(chat.texts()) == [
            "This channel already has 1 request waiting; busy, try again shortly.",
            "⏳ Queued: 1 request ahead of yours.",
        ]
        backend.release(3)
        await app.router.drain()
    finally:
        await app.stop()



async def test_answer_always_in_a_channel_covers_its_threads(
    app: App, chat: RecordingAdapter
) -> None:
    await send(app, chat, "/answer always", moderator=True, addressed=False)
    await send(app, chat, "in a thread", thread="t1", addressed=False)
    assert chat.texts()[-1] == "You said: user: in a thread"
    await send(app, chat, "/answer addressed", thread="t1", moderator=True)
    assert chat.texts()[-1] == "I'll answer in this thread only when mentioned or replied to."
    await send(app, chat, "ignored now", thread="t1", addressed=False)
    assert chat.texts()[-1] != "You said: user: ignored now"


async def test_a_phone_dash_before_community_is_understood(
    app: App, chat: RecordingAdapter
) -> None:
    await send(app, chat, "/profile use researcher \u2014community", community_moderator=True)
    assert chat.texts()[-1].startswith("The whole community now uses profile 'researcher'")


async def explained(app: App, chat: RecordingAdapter) -> str:
    shown = len(chat.texts())
    await send(app, chat, "/profile explain")
    return "\n".join(chat.texts()[shown:])


async def test_explain_gives_the_room_a_reply_gets_and_why(
    tmp_path: Path, backend: FakeBackend
) -> None:
    app = make_app(tmp_path, backend, n_ctx=1024, reply_tokens=200)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        assert "  max_tokens = 200  (the operator's default, CABOT_REPLY_TOKENS)" in (
            await explained(app, chat))
        await send(app, chat, "hi")
        assert backend.requests[-1].max_tokens == 200
        await send(app, chat, "/layer create wordy\n```toml\ndescription = \"Long answers\"\n"
                   "[sampling]\nmax_tokens = 4000\n```", community_moderator=True)
        await send(app, chat, "/profile set base wordy", moderator=True)
        assert ("  max_tokens = 512  (wordy asks 4000; a reply gets at most half of the "
                "1024-token context window)") in await explained(app, chat)
        await send(app, chat, "hi again")
        assert backend.requests[-1].max_tokens == 512
    finally:
        await app.stop()


class NoPostingIn(RecordingAdapter):
    """A platform on which cabot may not post in one channel."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel
        self.refused = 0

    async def send(self, message: OutgoingMessage) -> SentMessage:
        if message.in_reply_to.scope.channel == self.channel:
            self.refused += 1
            raise ForbiddenError(f"cabot may not post in #{self.channel}; give it Send "
                                 "Messages there.")
        return await super().send(message)


async def test_a_place_where_posting_is_refused_costs_no_model_time_for_a_while(
    app: App, backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    router = Router(app.store, app.resolver, app.queue, app.backend, ChatLimits(),
                    clock=lambda: now[0])
    platform = NoPostingIn("announcements")
    await app.start([platform])
    sink = router.sink_for(platform)
    with caplog.at_level(logging.WARNING, logger="bot.router"):
        await sink(message("hello?", channel="announcements"))
        await router.drain()
        assert len(backend.requests) == 1 and platform.refused == 1
        for index in range(5):
            await sink(message(f"anyone there? {index}", channel="announcements"))
        await sink(message("hello", channel="general"))
        await router.drain()
    assert len(backend.requests) == 2  # only the other channel's message was generated
    assert platform.texts() == ["You said: user: hello"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "#announcements" in warnings[0] and "Not answering chat there for the next" in (
        warnings[0])
    now[0] += FORBIDDEN_QUIET + 1  # the permission may have been granted since: try again
    await sink(message("and now?", channel="announcements"))
    await router.drain()
    assert len(backend.requests) == 3 and platform.refused == 2
