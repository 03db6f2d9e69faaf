"""Rows 7-8: a base model, Gemma 3 270M (no chat template, 262k-token vocabulary).

The bot runs it in the transcript format (``bot.backends.chat_format``). The baseline is
raw llama-cpp-python on the same file: ``create_completion`` streaming on the very
prompt tokens the bot evaluated, with the same stop sequences and greedy sampling, so
both sides generate the same text.

Every channel starts from one earlier exchange (a story), which shows a base model what
kind of reply comes next; without it, it answers in a few words and the rates would
measure little but the first token.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from bench.common import BenchConfig, Row, median, own_thread
from bench.streams import STORIES, Console, batched, engine_stats, start_console, where_time_went
from bot.backends.base import GenerationRequest
from bot.backends.batched import BatchedBackend
from bot.messages import Scope
from tools.models import fetch_gemma

EXAMPLE = (
    "Tell me a story about a cat.",
    "Once upon a time, in a quiet town at the edge of a forest, there lived a small grey "
    "cat called Tom. Every morning Tom climbed the old wall behind the bakery and watched "
    "the baker open his shop. The smell of warm bread drifted over the street, and Tom "
    "dreamed of the day he would be brave enough to walk inside.\n\n"
    "One winter morning the snow was so deep that the baker could not open the door. Tom "
    "ran to the neighbours' houses, meowing at every window, until the people came out "
    "with shovels. Together they cleared the snow, and the baker opened his shop at last."
    "\n\nFrom that day on, Tom had a warm place by the oven.",
)
STREAM_PROMPT = "Write a story about a lighthouse keeper."


def gemma_config(config: BenchConfig) -> BenchConfig:
    """``config`` with the Gemma GGUF as the model (fetched first if missing)."""
    return dataclasses.replace(config, model=fetch_gemma())


async def seed(bot: Console, channel: str) -> None:
    """Give ``channel`` the example exchange as its history."""
    scope = Scope(platform="console", community=bot.console.community, channel=channel)
    await bot.app.store.conversations.append_exchange(
        scope, [("user", EXAMPLE[0]), ("assistant", EXAMPLE[1])],
        bot.app.settings.history_messages,
    )


@dataclasses.dataclass
class RawRun:
    tokens: int
    first: float
    seconds: float
    text: str


def raw_completion(llama: Any, engine: BatchedBackend, request: GenerationRequest, *,
                   fresh: bool = True) -> RawRun:
    """``create_completion`` streaming on the prompt tokens the bot gave its engine.

    ``fresh`` evaluates the whole prompt, as for a new channel; otherwise llama-cpp-python
    keeps the prefix it shares with the previous prompt, as it does on its own.
    """
    model = engine.engine.model
    assert model is not None
    prompt = engine.prompt_tokens(request.messages)
    if fresh:
        llama.reset()
    start = time.perf_counter()
    first = last = start
    tokens = 0
    text = ""
    for chunk in llama.create_completion(
        prompt, temperature=request.temperature, top_p=request.top_p, top_k=request.top_k,
        min_p=request.min_p, repeat_penalty=request.repeat_penalty,
        max_tokens=request.max_tokens, stop=[*request.stop, *model.chat.stop], stream=True,
    ):
        piece = chunk["choices"][0]["text"]
        if piece:
            last = time.perf_counter()
            if tokens == 0:
                first = last
            tokens += 1
            text += piece
    return RawRun(tokens, first - start, last - start, text)


async def load_raw(config: BenchConfig) -> Any:
    from llama_cpp import Llama

    return await own_thread(Llama, model_path=str(config.model), n_ctx=2048,
                            n_threads=config.n_threads, verbose=False)


async def warm_up(bot: Console, llama: Any, engine: BatchedBackend) -> None:
    """One untimed reply on each side, so one-time costs (first allocations, the stream
    filter's tables) are not counted in the first repeat."""
    await seed(bot, "gemma-warm-up")
    await bot.say("gemma-warm-up", STREAM_PROMPT)
    await bot.app.router.drain()
    await own_thread(raw_completion, llama, engine, bot.backend.requests[-1])


async def gemma_stream(config: BenchConfig) -> Row:
    """Tokens/s a user sees on the base model through the bot vs raw llama-cpp-python."""
    config = gemma_config(config)
    bot = await start_console(config, "gemma-stream", batched(config, parallel=4),
                              max_tokens=128)
    engine = bot.backend.inner
    assert isinstance(engine, BatchedBackend)
    llama = await load_raw(config)
    ours: list[float] = []
    raw: list[float] = []
    ours_first: list[float] = []
    raw_first: list[float] = []
    same_text = True
    tokens = 0
    try:
        await warm_up(bot, llama, engine)
        for repeat in range(config.repeats):
            channel = f"gemma-stream-{repeat}"
            await seed(bot, channel)
            # Alternate who goes first, so a change in machine load hits both alike.
            for turn in ((0, 1) if repeat % 2 == 0 else (1, 0)):
                if turn == 0:
                    await bot.say(channel, STREAM_PROMPT)
                    stats = bot.last_stats
                    assert stats is not None and stats.first_text_at is not None
                    assert stats.finished_at is not None
                    span = stats.finished_at - stats.first_text_at
                    ours.append((stats.pieces - 1) / max(span, 1e-9))
                    ours_first.append(stats.first_text_at - stats.received_at)
                    ours_text, tokens = stats.text, stats.pieces
                else:
                    # Every fresh channel sends the same prompt; repeat 0 runs ours first.
                    request = bot.backend.requests[-1]
                    result = await own_thread(raw_completion, llama, engine, request)
                    raw.append((result.tokens - 1) / max(result.seconds - result.first, 1e-9))
                    raw_first.append(result.first)
                    raw_text = result.text
            same_text = same_text and ours_text.strip() == raw_text.strip()
    finally:
        llama.close()
        await bot.stop()
    return Row(
        7, "Gemma 270M base: single stream tokens/s through the bot (transcript format)",
        "tok/s", median(ours), median(raw), "raw create_completion streaming, same prompt",
        "≥ 95%", median(ours) >= 0.95 * median(raw),
        details={"ours_runs": ours, "raw_runs": raw, "ours_first_token_s": median(ours_first),
                 "raw_first_token_s": median(raw_first), "tokens": tokens,
                 "same_text": same_text},
    )


async def gemma_channels(config: BenchConfig) -> Row:
    """Four channels at once on the batched engine vs the same jobs on raw llama-cpp-python."""
    config = gemma_config(config)
    count = 4
    bot = await start_console(config, "gemma-channels", batched(config, parallel=count),
                              max_tokens=64, wait=False, parallel=count)
    engine = bot.backend.inner
    assert isinstance(engine, BatchedBackend)
    llama = await load_raw(config)
    ours_rates: list[float] = []
    raw_rates: list[float] = []
    try:
        await warm_up(bot, llama, engine)
        before = engine_stats(bot)
        for repeat in range(config.repeats):
            channels = [f"gemma-{repeat}-{i}" for i in range(count)]
            for channel in channels:
                await seed(bot, channel)
            pieces = bot.backend.pieces
            started = time.perf_counter()
            for index, channel in enumerate(channels):
                await bot.say(channel, STORIES[index])
            await bot.app.router.drain()
            ours_rates.append((bot.backend.pieces - pieces) / (time.perf_counter() - started))
            requests = bot.backend.requests[-count:]
            started = time.perf_counter()
            # The channels share their history: raw llama-cpp-python keeps that prefix too.
            runs = [await own_thread(raw_completion, llama, engine, r, fresh=False)
                    for r in requests]
            raw_rates.append(sum(r.tokens for r in runs) / (time.perf_counter() - started))
    finally:
        llama.close()
        await bot.stop()
    ours, base = median(ours_rates), median(raw_rates)
    return Row(
        8, f"Gemma 270M base: aggregate tokens/s, {count} channels at once (batched engine)",
        "tok/s", ours, base, "the same jobs one at a time, raw create_completion",
        "≥ 1.4x", ours >= 1.4 * base,
        details={"ours_runs": ours_rates, "baseline_runs": raw_rates,
                 "peak_batch": engine.engine.stats.peak_batch,
                 **where_time_went(before, engine_stats(bot))},
    )
