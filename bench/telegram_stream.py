"""Streaming replies on Telegram over loopback: `python -m bench.telegram_stream [--model]`.

The real python-telegram-bot client talks to the fake Bot API of the tests, which enforces
Telegram's limits (20 messages a minute per group, edits included, answered with 429s).
For each scenario it prints the time from a user's message to the first visible text of
the reply (and how much of it the adapter and Bot API round trip took, after the core
had text to show), the edits and sends per reply, the time until the reply's final text
is shown, and how many 429s Telegram would have answered.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from adapters.telegram import TelegramAdapter
from bench.report import columns
from bot.app import App
from bot.backends.base import Backend
from bot.reply import ReplyStats
from bot.settings import Settings
from tests.helpers.apps import make_settings, telegram_settings
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.fake_telegram import FakeTelegram

TOKEN = "5550009999:AAH-bench-token-not-a-real-one_000000"
GROUP = -100777
REPLY = ("Streaming replies keep people company while the model writes. " * 16).strip()
QUESTIONS = (
    "Tell me about the history of Paris in a few paragraphs.",
    "Explain how rain forms, step by step.",
    "Describe a good breakfast and why it matters.",
)


@dataclass
class Row:
    scenario: str
    replies: int
    first_text_ms: float
    adapter_ms: float
    edits: float
    sends: float
    reply_s: float
    rate_limited: int


def _more_than(fake: FakeTelegram, chat: int, count: int) -> bool:
    return len(fake.bot_messages(chat)) > count


async def measure(name: str, backend: Backend, base: Settings, replies: int,
                  in_group: bool, pause: float) -> Row:
    fake = FakeTelegram(TOKEN)
    await fake.start()
    user = fake.add_user(42, "Dana", "dana")
    fake.add_private_chat(user)
    fake.add_group(GROUP, "bench", owner=user)
    chat = GROUP if in_group else user["id"]
    prefix = "@cabot_test_bot " if in_group else ""
    app = App(base, backend=backend)
    adapter = TelegramAdapter(telegram_settings(token=TOKEN, base_url=fake.base_url))
    firsts, overheads, edits, sends, durations = [], [], [], [], []
    finished: list[ReplyStats] = []
    app.router.observe(lambda _message, stats: finished.append(stats))
    await app.start([adapter])
    try:
        for n in range(replies):
            await asyncio.sleep(pause)  # people take a moment to read and write
            before = len(fake.bot_messages(chat))
            asked_at = time.monotonic()
            fake.post(chat, user, f"{prefix}{QUESTIONS[n % len(QUESTIONS)]}")
            # The first reply message comes after the update was handed to the core.
            await fake.wait_for(partial(_more_than, fake, chat, before), 600)
            await app.router.drain()
            await adapter.flush()
            shown = fake.bot_messages(chat)[before:]
            firsts.append(shown[0].sent_at - asked_at)
            stats = finished[-1] if finished else None
            if stats is not None and stats.first_text_at is not None:
                # From the core having text to show until Telegram has stored it.
                overheads.append(shown[0].sent_at - stats.first_text_at)
            sends.append(len(shown))
            edits.append(sum(len(m.versions) - 1 for m in shown))
            last = max([m.sent_at for m in shown] + [t for m in shown for t in m.edit_times])
            durations.append(last - asked_at)
    finally:
        await app.stop()
        await fake.stop()
    flooded = sum(1 for call in fake.calls if call.error_code == 429)
    return Row(name, replies, 1000 * statistics.median(firsts),
               1000 * statistics.median(overheads or [0.0]), statistics.mean(edits),
               statistics.mean(sends), statistics.median(durations), flooded)


async def run(with_model: bool, replies: int, pause: float) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        def settings(name: str) -> Settings:
            return make_settings(Path(tmp), db=Path(tmp) / f"{name}.db")

        for in_group in (False, True):
            where = "group" if in_group else "private"
            rows.append(await measure(f"{where}, fake backend, instant", FakeBackend(REPLY),
                                      settings(f"instant-{where}"), replies, in_group, pause))
            rows.append(await measure(f"{where}, fake backend, 110 pieces/s",
                                      FakeBackend(REPLY, rate=110),
                                      settings(f"paced-{where}"), replies, in_group, pause))
        if with_model:
            from bot.app import create_backend

            for in_group in (False, True):
                where = "group" if in_group else "private"
                model_settings = settings(f"model-{where}")
                rows.append(await measure(f"{where}, SmolLM2-135M (llama.cpp)",
                                          create_backend(model_settings), model_settings,
                                          replies, in_group, pause))
    return rows


def print_table(rows: list[Row]) -> None:
    header = ("scenario", "replies", "first text ms", "of which adapter ms", "edits/reply",
              "sends/reply",
              "final text s", "429s")
    print(columns(header, [
        (r.scenario, str(r.replies), f"{r.first_text_ms:.0f}", f"{r.adapter_ms:.1f}",
         f"{r.edits:.1f}",
         f"{r.sends:.1f}", f"{r.reply_s:.2f}", str(r.rate_limited))
        for r in rows
    ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="store_true", help="also run the bundled model")
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--pause", type=float, default=2.0,
                        help="seconds between a reply and the next question")
    args = parser.parse_args()
    started = time.monotonic()
    print_table(asyncio.run(run(args.model, args.replies, args.pause)))
    print(f"(edit interval 1.0 s per chat, groups 20 messages a minute; "
          f"{time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
