"""Rows 1-3: a single stream, many channels at once, and returning channels.

Every reply goes through the whole bot: the console adapter, the router (profile
resolution, memory from the SQLite store, prompt fitting), the inference queue and the
engine. The ``bench`` profile samples greedily, so a prompt gives the same tokens on
every engine and the figures compare the same work.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from adapters.console import ConsoleAdapter
from bench.common import BenchConfig, RecordingBackend, Row, bench_app, median, own_thread
from bot.app import App
from bot.backends.base import GenerationRequest
from bot.backends.batched import BatchedBackend
from bot.backends.engine_job import EngineStats
from bot.backends.llama import LlamaBackend
from bot.messages import Scope
from bot.reply import ReplyStats

log = logging.getLogger(__name__)

STORY = "Tell me a long story about a dragon who learns to fly."
STORIES = tuple(f"Write a story about {subject}." for subject in (
    "a dragon", "a robot", "a lighthouse keeper", "the sea", "a king", "a night train",
    "an old tree", "a falling star",
))
"""Open-ended requests: every reply runs to the token limit, so all channels generate."""
TOPICS = ("gardening", "astronomy", "cooking", "music", "sailing", "chess", "birds", "trains")


@dataclass
class Console:
    """A started bot with a console adapter whose output goes nowhere."""

    app: App
    console: ConsoleAdapter
    backend: RecordingBackend
    replies: list[ReplyStats] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app.router.observe(lambda _message, stats: self.replies.append(stats))

    @property
    def last_stats(self) -> ReplyStats | None:
        """The stats of the latest finished reply."""
        return self.replies[-1] if self.replies else None

    async def say(self, channel: str, text: str) -> None:
        """Send ``text`` in ``channel`` (waiting for the reply if the bot was started so)."""
        self.console.channel = channel
        await self.console.say(text)

    async def stop(self) -> None:
        await self.app.stop()


async def start_console(
    config: BenchConfig, name: str, engine: Any, *, max_tokens: int, wait: bool = True,
    **overrides: Any,
) -> Console:
    """A bot on ``engine`` behind a console adapter; ``wait`` makes ``say`` wait for replies."""
    backend = RecordingBackend(engine)
    app = bench_app(config, name, backend, max_tokens=max_tokens, **overrides)
    console = ConsoleAdapter(io.StringIO(), settle=app.router.drain if wait else None)
    await app.start([console])
    return Console(app, console, backend)


def batched(config: BenchConfig, *, parallel: int, n_ctx: int = 2048,
            resident: int = 8) -> BatchedBackend:
    return BatchedBackend(config.model, n_ctx=n_ctx, parallel=parallel,
                          resident=max(resident, parallel), n_threads=config.n_threads,
                          n_threads_batch=config.n_threads)


def single(config: BenchConfig, *, n_ctx: int = 2048, cache: bool = True) -> LlamaBackend:
    return LlamaBackend(config.model, n_ctx=n_ctx, n_threads=config.n_threads,
                        cache_bytes=(256 << 20) if cache else 0)


# -- 1. single stream ---------------------------------------------------------------------


@dataclass
class RawStream:
    tokens: int
    first: float
    rate: float
    text: str


def raw_stream(llama: Any, request: GenerationRequest) -> RawStream:
    """``create_chat_completion`` streaming on ``request``'s prompt and sampling.

    The model's state is reset first, so the prompt is evaluated in full, as it is for
    each of our fresh channels.
    """
    llama.reset()
    start = time.perf_counter()
    first = last = start
    tokens = 0
    text = ""
    for chunk in llama.create_chat_completion(
        messages=[{"role": m.role, "content": m.content} for m in request.messages],
        temperature=request.temperature, top_p=request.top_p, top_k=request.top_k,
        min_p=request.min_p, repeat_penalty=request.repeat_penalty,
        max_tokens=request.max_tokens, stop=list(request.stop) or None, stream=True,
    ):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            last = time.perf_counter()
            if tokens == 0:
                first = last
            tokens += 1
            text += piece
    return RawStream(tokens, first - start, (tokens - 1) / max(last - first, 1e-9), text)


async def single_stream(config: BenchConfig) -> Row:
    """Tokens/s a user sees through the bot vs raw llama-cpp-python on the same prompt."""
    from llama_cpp import Llama

    bot = await start_console(config, "single-stream", batched(config, parallel=4),
                              max_tokens=128)
    llama = await own_thread(
        Llama, model_path=str(config.model), n_ctx=2048, n_threads=config.n_threads,
        verbose=False,
    )
    ours: list[float] = []
    raw: list[float] = []
    ours_first: list[float] = []
    raw_first: list[float] = []
    same_text = True
    try:
        for repeat in range(config.repeats):
            # Alternate who goes first, so a change in machine load hits both alike.
            for turn in ((0, 1) if repeat % 2 == 0 else (1, 0)):
                if turn == 0:
                    await bot.say(f"stream-{repeat}", STORY)
                    stats = bot.last_stats
                    assert stats is not None and stats.first_text_at is not None
                    assert stats.finished_at is not None
                    span = stats.finished_at - stats.first_text_at
                    ours.append((stats.pieces - 1) / max(span, 1e-9))
                    ours_first.append(stats.first_text_at - stats.received_at)
                    ours_text, ours_tokens = stats.text, stats.pieces
                else:
                    # Every fresh channel sends the same prompt; repeat 0 runs ours first.
                    request = bot.backend.requests[-1]
                    result = await own_thread(raw_stream, llama, request)
                    raw.append(result.rate)
                    raw_first.append(result.first)
                    raw_text = result.text
            same_text = same_text and ours_text.strip() == raw_text.strip()
    finally:
        llama.close()
        await bot.stop()
    return Row(
        1, "Single stream: tokens/s through console adapter + router + queue + engine",
        "tok/s", median(ours), median(raw), "raw create_chat_completion streaming",
        "≥ 95%", median(ours) >= 0.95 * median(raw),
        details={"ours_runs": ours, "raw_runs": raw, "ours_first_token_s": median(ours_first),
                 "raw_first_token_s": median(raw_first), "tokens": ours_tokens,
                 "same_text": same_text},
    )


# -- 2. aggregate ---------------------------------------------------------------------------


async def run_channels(bot: Console, channels: list[str]) -> tuple[float, int]:
    """Ask one question per channel; seconds until every reply is done, and tokens.

    A bot started without waiting gets every question at once; one that waits answers
    them one at a time.
    """
    before = bot.backend.pieces
    start = time.perf_counter()
    for index, channel in enumerate(channels):
        await bot.say(channel, STORIES[index % len(STORIES)])
    await bot.app.router.drain()
    return time.perf_counter() - start, bot.backend.pieces - before


async def aggregate(config: BenchConfig) -> list[Row]:
    """N channels generating at once on the batched engine vs one at a time on the single."""
    ours_bot = await start_console(config, "aggregate-batched", batched(config, parallel=8),
                                   max_tokens=64, wait=False, parallel=8)
    single_bot = await start_console(config, "aggregate-single", single(config),
                                     max_tokens=64, wait=True)
    rows = []
    try:
        for count, target in ((4, 1.4), (8, 1.6)):
            ours_rates: list[float] = []
            single_rates: list[float] = []
            before = engine_stats(ours_bot)
            for repeat in range(config.repeats):
                names = [f"agg{count}-{repeat}-{i}" for i in range(count)]
                seconds, tokens = await run_channels(ours_bot, names)
                ours_rates.append(tokens / seconds)
                seconds, tokens = await run_channels(single_bot, names)
                single_rates.append(tokens / seconds)
            ours, base = median(ours_rates), median(single_rates)
            rows.append(Row(
                2, f"Aggregate tokens/s, {count} channels at once (batched engine)",
                "tok/s", ours, base, "the same jobs one at a time (single engine)",
                f"≥ {target}x", ours >= target * base,
                details={"ours_runs": ours_rates, "baseline_runs": single_rates,
                         "peak_batch": peak_batch(ours_bot),
                         **where_time_went(before, engine_stats(ours_bot))},
            ))
    finally:
        await ours_bot.stop()
        await single_bot.stop()
    return rows


def peak_batch(bot: Console) -> int:
    """The most sequences the batched engine decoded together so far."""
    engine = bot.backend.inner
    return engine.engine.stats.peak_batch if isinstance(engine, BatchedBackend) else 1


def engine_stats(bot: Console) -> EngineStats:
    engine = bot.backend.inner
    assert isinstance(engine, BatchedBackend)
    return dataclasses.replace(engine.engine.stats)


def where_time_went(before: EngineStats, after: EngineStats) -> dict[str, float]:
    """The batched engine's decode rates during a row: generation steps and prompts."""
    generated = after.generated_tokens - before.generated_tokens
    generating = after.generate_seconds - before.generate_seconds
    prompt = after.prompt_tokens - before.prompt_tokens
    reading = after.prompt_seconds - before.prompt_seconds
    mixed = after.mixed_seconds - before.mixed_seconds
    steps = after.steps - before.steps
    return {
        # Calls that also read prompt chunks count as generating time: a lower bound.
        "engine_generation_tok_s": generated / max(generating + mixed, 1e-9),
        "engine_mean_batch": generated / max(steps, 1),
        "engine_prompt_tokens": prompt,
        "engine_prompt_s": reading,
        "engine_generation_s": generating,
        "engine_generation_and_prompt_s": mixed,
    }


# -- 3. returning channels ------------------------------------------------------------------


def filler(topic: str, turn: int) -> tuple[str, str]:
    """One earlier exchange about ``topic`` (about 40 tokens each way)."""
    question = (f"Earlier question {turn} about {topic}: what should a beginner in {topic} "
                f"know first, and which mistakes are common in the first weeks?")
    answer = (f"A beginner in {topic} should start slowly, learn the basic vocabulary, "
              f"practise a little every day and ask experienced people for advice. "
              f"Common mistakes in {topic} are rushing, skipping the basics and giving up "
              f"too early after turn {turn}.")
    return question, answer


async def seed_history(bot: Console, channel: str, topic: str, exchanges: int) -> None:
    scope = Scope(platform="console", community=bot.console.community, channel=channel)
    for turn in range(exchanges):
        question, answer = filler(topic, turn)
        await bot.app.store.conversations.append_exchange(
            scope, [("user", question), ("assistant", answer)], bot.app.settings.history_messages
        )


async def interleave(bot: Console, channels: list[str], rounds: int) -> list[list[float]]:
    """Each round, every channel in turn asks one more question; time to first text."""
    firsts: list[list[float]] = []
    for round_ in range(rounds):
        row = []
        for index, channel in enumerate(channels):
            await bot.say(channel, f"Round {round_}: tell me one more thing about "
                                   f"{TOPICS[index % len(TOPICS)]}.")
            stats = bot.last_stats
            assert stats is not None
            first = stats.first_text_at if stats.first_text_at is not None else stats.finished_at
            assert first is not None
            row.append(first - stats.received_at)
        firsts.append(row)
    return firsts


async def returning(config: BenchConfig) -> list[Row]:
    """A returning channel's time to first text: resident KV vs evaluating from scratch."""
    rows = []
    exchanges = 6  # with the system prompt, about 500 tokens of conversation
    for count in (3, 8):
        rounds = 3 if count == 3 else 2  # the first round fills the caches; the rest count
        results: dict[str, list[list[float]]] = {}
        prompt_tokens: dict[str, int] = {}
        for label, engine in (("ours", batched(config, parallel=4, resident=8)),
                              ("cold", single(config, cache=False)),
                              ("ram_cache", single(config, cache=True))):
            bot = await start_console(config, f"returning-{count}-{label}", engine,
                                      max_tokens=32)
            try:
                channels = [f"ret{count}-{i}" for i in range(count)]
                for index, channel in enumerate(channels):
                    await seed_history(bot, channel, TOPICS[index % len(TOPICS)], exchanges)
                results[label] = await interleave(bot, channels, rounds)
                last = bot.backend.requests[-1]
                prompt_tokens[label] = sum(bot.backend.count_tokens(m.content) + 8
                                           for m in last.messages)
            finally:
                await bot.stop()
        ours = median([t for row in results["ours"][1:] for t in row])
        cold = median([t for row in results["cold"][1:] for t in row])
        ram = median([t for row in results["ram_cache"][1:] for t in row])
        rows.append(Row(
            3, f"Time to first text, returning channel, {count} channels interleaving",
            "s", ours, cold, "no cache (single engine, prompt evaluated in full)",
            "≤ 15%", ours <= 0.15 * cold,
            details={"ours_first_visit_s": median(results["ours"][0]),
                     "single_with_ram_cache_s": ram, "prompt_tokens": prompt_tokens["ours"],
                     "runs": results},
        ))
    return rows
