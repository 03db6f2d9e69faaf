"""A flooding user is told once and then not answered; everyone else still is."""

from __future__ import annotations

from pathlib import Path

from bot.flood import FloodGuard
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend, last_user_text
from tests.helpers.recording import RecordingAdapter, message


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_guard_counts_a_rolling_window_and_tells_once() -> None:
    clock = Clock()
    guard = FloodGuard(limit=3, window=60, clock=clock)
    assert [guard.admit("u") for _ in range(5)] == [True, True, True, False, False]
    assert guard.admit("other")
    assert [guard.tell_once("u"), guard.tell_once("u")] == [True, False]
    assert 59 <= guard.retry_after("u") <= 60
    clock.now += 61
    assert guard.admit("u") and guard.retry_after("u") == 0
    assert guard.tell_once("u"), "a new window, a new notice"


async def test_a_chat_flood_gets_its_replies_and_one_notice(tmp_path: Path) -> None:
    backend = FakeBackend(lambda r: f"You said: {last_user_text(r)}")
    app = make_app(tmp_path, backend, user_rate=2, flood_messages=1000)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        for n in range(50):
            await app.router.handle(chat, message(f"spam {n}", author="flooder"))
        await app.router.handle(chat, message("a real question", author="bob"))
    finally:
        await app.stop()
    texts = chat.texts()
    assert texts[:2] == ["You said: flooder: spam 0", "You said: flooder: spam 1"]
    assert len([t for t in texts if "too fast" in t]) == 1
    assert texts[-1] == "You said: bob: a real question"
    assert len(texts) == 4


async def test_a_command_flood_is_cut_but_moderators_get_through(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeBackend(), flood_messages=3)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        for _ in range(30):
            await app.router.handle(chat, message("/profile show", author="flooder"))
        for _ in range(5):
            await app.router.handle(chat, message("/profile show", author="mod", moderator=True))
        await app.router.handle(chat, message("/profile show", author="bob"))
    finally:
        await app.stop()
    texts = chat.texts()
    shown = [t for t in texts if t.startswith("Profile 'default'")]
    notices = [t for t in texts if "faster than I can answer" in t]
    assert len(shown) == 3 + 5 + 1
    assert len(notices) == 1 and len(texts) == 10
