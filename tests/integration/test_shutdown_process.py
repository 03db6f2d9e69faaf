"""``cabot run`` stopped by SIGTERM (what ``docker compose stop`` sends) while it streams a
reply: the reply is delivered whole, and cabot exits 0 well inside Docker's 10 s."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from bot.messages import Scope
from bot.store import Store
from tests.helpers.fake_telegram import FakeTelegram

ROOT = Path(__file__).parents[2]
TOKEN = "424242:shutdown-test-token"
QUESTION = "Write a long story about a lighthouse keeper and the sea."

pytestmark = pytest.mark.model


async def run_and_stop(tmp_path: Path, grace: str) -> tuple[int, float, list[str]]:
    """Start ``cabot run`` on a fake Telegram, SIGTERM it mid-reply; (status, seconds, texts)."""
    fake = FakeTelegram(TOKEN)
    await fake.start()
    user = fake.add_user(7, "Dana", "dana")
    fake.add_private_chat(user)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CABOT_")}
    env.update({
        "PYTHONPATH": str(ROOT), "CABOT_N_THREADS": "1", "CABOT_DB": str(tmp_path / "c.db"),
        "CABOT_TELEGRAM_TOKEN": TOKEN, "CABOT_TELEGRAM_BASE_URL": fake.base_url,
        "CABOT_SHUTDOWN_GRACE": grace, "CABOT_REPLY_TOKENS": "200",
        "CABOT_TELEGRAM_EDIT_INTERVAL": "0.2", "PTB_TIMEDELTA": "true",
    })
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters", "run", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake.wait_for(lambda: bool(fake.calls_to("setMyCommands")), 120)
        fake.post(user["id"], user, QUESTION)
        await fake.wait_for(lambda: any(len(m.versions) >= 2
                                        for m in fake.bot_messages(user["id"])), 120)
        process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        status = await asyncio.wait_for(process.wait(), 30)
        took = time.monotonic() - stopped_at
        return status, took, [m.versions[-1] for m in fake.bot_messages(user["id"])]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await fake.stop()


async def remembered(tmp_path: Path) -> list[tuple[str, str]]:
    store = Store(tmp_path / "c.db")
    await store.open()
    try:
        scope = Scope(platform="telegram", community="7", channel="7")
        return await store.conversations.history(scope, 10)
    finally:
        await store.close()


async def test_sigterm_lets_the_reply_finish_and_exits_0(tmp_path: Path) -> None:
    status, took, texts = await run_and_stop(tmp_path, grace="7")
    assert status == 0
    assert took < 10
    assert texts and "shutting down" not in texts[-1]
    # The whole reply was shown and committed to memory before cabot exited.
    assert await remembered(tmp_path) == [("user", QUESTION), ("assistant", texts[-1])]


async def test_past_the_grace_the_user_is_told_and_cabot_still_exits_0(tmp_path: Path) -> None:
    status, took, texts = await run_and_stop(tmp_path, grace="0")
    assert status == 0
    assert took < 10
    assert texts[-1].endswith("cabot is shutting down; the reply was stopped.")
