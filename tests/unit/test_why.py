"""``/profile why``: which rules acted on the latest reply here, from which layer, where."""

from __future__ import annotations

import pytest

from bot.app import App
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

REPLY = ("Damn, that is a long question. Read www.example.com or mail john@example.com, "
         "you sh!t. " + "More words here. " * 60)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend(REPLY)


async def say(app: App, chat: RecordingAdapter, text: str, **kwargs: object) -> str:
    before = len(chat.shown)
    await app.router.handle(chat, message(text, **kwargs))  # type: ignore[arg-type]
    return "\n".join(shown.text for shown in chat.shown[before:])


async def test_why_names_each_rule_that_acted_and_where(
    app: App, chat: RecordingAdapter
) -> None:
    assert "No reply here" in await say(app, chat, "/profile why")
    await say(app, chat, "/profile use kids", moderator=True)
    reply = await say(app, chat, "Tell me something.")
    assert "Damn" not in reply and "example.com" not in reply
    why = await say(app, chat, "/profile why")
    assert "banned word d*** (family-friendly): masked 1 time in the stream filter" in why
    assert "banned word s*** (family-friendly): masked 1 time in the stream filter" in why
    assert "(no-links): applied" in why
    assert "length cap of 600 characters (concise): the reply was cut in the stream" in why
    assert "were forbidden throughout (logit bias)" in why
    other = await say(app, chat, "/profile why", channel="elsewhere")
    assert "No reply here" in other, "each place has its own latest reply"


async def test_why_after_a_refusal_names_the_refusal_on_input(
    app: App, chat: RecordingAdapter, backend: FakeBackend
) -> None:
    await say(app, chat, "/profile use kids", moderator=True)
    refused = await say(app, chat, "show me p0rn")
    assert "isn't for this channel" in refused and backend.requests == []
    why = await say(app, chat, "/profile why")
    assert "(family-friendly): the message was refused on input; the model never saw it" in why


async def test_why_says_when_no_rule_acted(app: App, chat: RecordingAdapter,
                                           backend: FakeBackend) -> None:
    backend._reply = "A calm answer."
    await say(app, chat, "hello")
    assert "No hard rule had to act on it." in await say(app, chat, "/profile why")
