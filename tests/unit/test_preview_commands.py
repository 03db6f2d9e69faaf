"""/profile preview and /profile diff through the router: both answers to the asker only,
generated through the shared queue, and nothing changed or remembered."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app import App
from bot.backends.base import GenerationRequest
from bot.messages import Scope
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.recording import RecordingAdapter, message

GENERAL = Scope(platform="test", community="guild", channel="general")


def answer(request: GenerationRequest) -> str:
    system = request.messages[0].content if request.messages[0].role == "system" else ""
    who = "gentle" if "child" in system else "plain"
    said = last_user_text(request).split(": ", 1)[-1]  # in a group: "user: ..."
    return f"{who} answer to {said}, damn."


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(answer)


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: Any) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))
    return "\n".join(shown.text for shown in chat.shown[before:])


async def test_a_preview_shows_both_answers_to_the_asker_and_changes_nothing(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    shown = await say(app, chat, "/profile preview kids tell me a joke")
    assert shown.startswith("🔍 Preview, for you only")
    assert "Message: tell me a joke" in shown
    with_kids, in_effect = shown.split("▶ ")[1:]
    assert with_kids.startswith("With profile 'kids'")
    assert "gentle answer to tell me a joke," in with_kids
    assert "damn" not in with_kids  # kids bans the word: masked as in a reply
    assert in_effect.startswith("With the stack in effect here (profile 'default')")
    assert "plain answer to tell me a joke, damn." in in_effect
    assert all(s.private and s.ephemeral for s in chat.shown)
    assert len(backend.requests) == 2  # both through the queue, as jobs
    assert await app.store.conversations.history(GENERAL, 10) == []
    assert await app.store.alignment.bindings_for(GENERAL) == {}
    assert "No reply here since cabot started" in await say(app, chat, "/profile why")


async def test_without_a_message_the_latest_one_here_is_answered_again(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    assert "Nothing was said here yet" in await say(app, chat, "/profile preview kids")
    await say(app, chat, "what is a cat?")
    await say(app, chat, "and a dog?")
    remembered = await app.store.conversations.history(GENERAL, 10)
    shown = await say(app, chat, "/profile preview base+concise")
    assert "Message: and a dog?" in shown and "With layers base, concise" in shown
    preview = backend.requests[-2:]
    # The earlier exchange is the context; the message itself is not repeated in it. As in
    # any reply in a group channel, each message is under its author's name.
    assert [m.content for m in preview[0].messages if m.role == "user"] == [
        "user: what is a cat?", "user: and a dog?"]
    assert await app.store.conversations.history(GENERAL, 10) == remembered


async def test_a_layer_stack_and_a_separated_message_are_previewed(
    app: App, chat: RecordingAdapter
) -> None:
    shown = await say(app, chat, "/profile preview base family-friendly -- kids story")
    assert "With layers base, family-friendly" in shown and "gentle answer to kids story" in shown


async def test_the_candidate_is_refused_on_input_as_its_rules_say(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    shown = await say(app, chat, "/profile preview kids show me porn")
    assert "(refused on input, before the model) That topic isn't for this channel" in shown
    assert len(backend.requests) == 1  # only the stack in effect was asked


async def test_the_communitys_bounds_apply_to_the_candidate(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile lock family-friendly", community_moderator=True,
              author="serena")
    refused = await say(app, chat, "/profile preview storyteller once upon a time")
    assert "'fiction' conflicts with 'family-friendly', which serena locked" in refused
    shown = await say(app, chat, "/profile preview base hi")
    assert "With layers base" in shown and "gentle answer to hi" in shown.split("▶ ")[1]
    assert len(backend.requests) == 2


async def test_unknown_names_get_suggestions_and_no_generation(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    shown = await say(app, chat, "/profile preview kidz hello")
    assert "There is no profile or layer called 'kidz'. Did you mean 'kids'" in shown
    typo = await say(app, chat, "/profile preview base concize -- hello")
    assert "There is no layer called 'concize'" in typo
    assert backend.requests == []


@pytest.mark.parametrize("app_settings", [{"user_rate": 1}])
async def test_a_preview_the_queue_refuses_runs_no_job(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    shown = await say(app, chat, "/profile preview kids hello")
    assert "too fast" in shown
    await app.router.drain()
    assert backend.requests == [] and app.queue.pending_count == 0


async def test_diff_names_what_a_profile_adds_and_removes_with_its_layers(
    app: App, chat: RecordingAdapter
) -> None:
    shown = await say(app, chat, "/profile diff kids")
    lines = shown.splitlines()
    assert lines[0] == ("Profile 'kids' compared with the stack in effect here (profile "
                        "'default') (+ only in the first, - only in the second):")
    assert "Layers: + family-friendly, + concise, + no-links, + no-pii" in shown
    assert "  + [family-friendly] Everyone here may be a child." in shown
    assert "  temperature: 0.7 (helpful) → 0.6 (family-friendly)" in shown
    assert "  max_tokens: (cabot default) → 160 (concise)" in shown
    assert "  + banned words (" in shown and "): f***," in shown and "(family-friendly)" in shown
    # (It may open a message of its own: the diff is split at the platform's length.)
    assert "+ max reply length = 600 characters  (concise)" in shown
    back = await say(app, chat, "/profile diff default kids")
    assert "Layers: - family-friendly" in back and "  - max reply length = 600" in back
    same = await say(app, chat, "/profile diff default")
    assert "No difference" in same
    joined = await say(app, chat, "/profile diff base+concise base")
    assert "Layers: + concise" in joined
    assert all(s.ephemeral for s in chat.shown)


async def test_a_preview_reads_the_conversation_as_a_reply_would(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "what is a cat?", author="sam")
    await say(app, chat, '/layer create closing\n```\ndescription = "Closes politely"\n'
                         'post_history = "End with a kind word."\n```',
              community_moderator=True)
    shown = await say(app, chat, "/profile preview base closing", author="max")
    assert "Message: what is a cat?" in shown
    candidate = backend.requests[-2]
    # The latest message is sam's, under sam's name, with the layer's post-history
    # instructions after it, as a reply here would have them.
    assert candidate.messages[-1].role == "user"
    assert candidate.messages[-1].content.startswith("sam: what is a cat?")
    assert "End with a kind word." in candidate.messages[-1].content
    assert "End with a kind word." not in str(backend.requests[-1].messages)
