"""Streaming replies on Discord over loopback: `python -m bench.discord_stream [--model]`.

The real discord.py client talks to the fake Discord of the tests with Discord's real
limits (an edit per second at most, 5 messages per 5 s per channel). For each scenario
it prints the time from a user's message to the first visible text of the reply, and
the edits and sends per reply.
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

from adapters.discord import DiscordAdapter
from bench.report import columns
from bot.app import App
from bot.backends.base import Backend
from tests.helpers.apps import discord_settings, make_settings
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.fake_discord import FakeDiscord

REPLY = ("Streaming replies keep people company while the model writes. " * 16).strip()
LONG_REPLY = ("A long answer is split into several Discord messages as it grows. " * 75).strip()


@dataclass
class Row:
    scenario: str
    replies: int
    cold_first_text_ms: float
    first_text_ms: float
    edits: float
    sends: float
    reply_s: float
    rate_limited: int


async def measure(name: str, backend: Backend, folder: Path, replies: int) -> Row:
    async with FakeDiscord(token="bench-token") as fake:
        owner = fake.make_user("owner")
        guild = fake.add_guild("bench", owner)
        channel = fake.add_channel(guild, "general")
        app = App(make_settings(folder, db=folder / f"{abs(hash(name))}.db"), backend=backend)
        discord = discord_settings(token=fake.token, api_url=fake.api_url,
                                   gateway_url=fake.gateway_url)
        adapter = DiscordAdapter(discord, library=app.resolver.library_for,
                                 guild_ready_timeout=0.01)
        firsts, edits, sends, durations = [], [], [], []
        await app.start([adapter])
        try:
            for n in range(replies):
                before = len(fake.requests)
                asked = await fake.say(owner, channel, f"<@{fake.bot['id']}> question {n}")
                await fake.wait_for(partial(_answered, fake, channel, asked.id), 600)
                await app.router.drain()
                writes = [r for r in fake.requests[before:]
                          if r.status == 200 and f"/channels/{channel}/messages" in r.path]
                posts = [r for r in writes if r.method == "POST"]
                firsts.append(posts[0].at - asked.at)
                sends.append(len(posts))
                edits.append(len(writes) - len(posts))
                durations.append(writes[-1].at - asked.at)
        finally:
            await app.stop()
        return Row(name, replies, 1000 * firsts[0], 1000 * statistics.median(firsts),
                   statistics.mean(edits), statistics.mean(sends), statistics.median(durations),
                   sum(1 for r in fake.requests if r.status == 429))


async def run(with_model: bool, replies: int) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [
            await measure("fake backend, instant", FakeBackend(REPLY), folder, replies),
            await measure("fake backend, 110 pieces/s", FakeBackend(REPLY, rate=110),
                          folder, replies),
            await measure("fake, 5,000 chars, 110 pieces/s",
                          FakeBackend(LONG_REPLY, rate=110), folder, replies),
        ]
        if with_model:
            from bot.app import create_backend

            # The default settings: n_ctx 2048, 256 reply tokens, the RAM prompt cache.
            model = create_backend(make_settings(folder))
            rows.append(await measure("SmolLM2-135M (llama.cpp)", model, folder, replies))
    return rows


def _answered(fake: FakeDiscord, channel: str, message_id: str) -> bool:
    return any(m.reply_to == message_id for m in fake.bot_messages(channel))


def print_table(rows: list[Row]) -> None:
    header = ("scenario", "replies", "first text ms (1st, median)", "edits/reply",
              "sends/reply", "reply s", "429s")
    print(columns(header, [
        (r.scenario, str(r.replies), f"{r.cold_first_text_ms:.0f}, {r.first_text_ms:.0f}",
         f"{r.edits:.1f}",
         f"{r.sends:.1f}", f"{r.reply_s:.2f}", str(r.rate_limited))
        for r in rows
    ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="store_true", help="also run the bundled model")
    parser.add_argument("--replies", type=int, default=3)
    args = parser.parse_args()
    started = time.monotonic()
    print_table(asyncio.run(run(args.model, args.replies)))
    print(f"(edit interval 1.0 s, budget 5 messages per 5 s per channel; "
          f"{time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
