"""A graceful stop: no new messages, replies in progress finish and show their final text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store import Store
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter, message

STORY = "Once upon a time there was a small bot that always finished its sentences."


async def test_a_reply_in_progress_finishes_and_new_messages_wait(tmp_path: Path) -> None:
    backend = FakeBackend(STORY, pause_after=3)
    app = make_app(tmp_path, backend)
    chat = RecordingAdapter()
    await app.start([chat])
    assert chat.sink is not None
    await chat.sink(message("tell me a story"))
    await asyncio.wait_for(chat.wait_until(lambda: bool(chat.texts())), 5)  # half shown
    shutdown = asyncio.create_task(app.shutdown(grace=5))
    await asyncio.sleep(0)
    await chat.sink(message("and another one", author="late"))  # arrives while stopping
    backend.release()
    await asyncio.wait_for(shutdown, 10)
    assert chat.texts() == [STORY]
    assert len(backend.requests) == 1, "nothing new is taken once stopping"


async def test_a_reply_past_the_grace_is_stopped_with_a_word(tmp_path: Path) -> None:
    backend = FakeBackend(STORY, pause_after=3)
    app = make_app(tmp_path, backend)
    chat = RecordingAdapter()
    await app.start([chat])
    assert chat.sink is not None
    await chat.sink(message("tell me a story"))
    await asyncio.wait_for(chat.wait_until(lambda: bool(chat.texts())), 5)
    await asyncio.wait_for(app.shutdown(grace=0.05), 10)  # never released: past the grace
    (final,) = chat.texts()
    assert final.startswith("Once upon a")
    assert final.endswith("⚠️ cabot is shutting down; the reply was stopped.")


class _BreaksOnStop(FakeBackend):
    async def stop(self) -> None:
        raise RuntimeError("the model would not unload")


async def test_a_part_that_fails_to_stop_does_not_keep_the_store_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path, _BreaksOnStop(STORY))
    chat = RecordingAdapter()
    await app.start([chat])
    assert chat.sink is not None
    await chat.sink(message("tell me a story"))
    await app.router.drain()
    await app.stop()
    assert "the backend failed to stop cleanly" in caplog.text
    # The store closed all the same (its connection thread would keep the process alive),
    # and what was said is in the file.
    with pytest.raises(StoreError):
        _ = app.store.database.db
    async with Store(tmp_path / "cabot.db") as store:
        assert [role for role, _ in await store.conversations.history(
            message("x").scope, 10)] == ["user", "assistant"]
