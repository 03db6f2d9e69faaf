"""Both engines on a base model: Gemma 3 270M, no chat template, a 262,144-token vocabulary.

With no template the model gets the transcript format; its replies must read as plain
text, end by themselves at the next turn, and obey the same hard rules as on SmolLM2.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.backends.base import ChatMessage, GenerationRequest
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from bot.backends.native import Vocabulary
from profiles import compose, load_builtin_library
from tests.helpers.engines import reply

pytestmark = pytest.mark.model

ROOT = Path(__file__).parents[2]
QUESTIONS = (
    "What is the capital of France?",
    "List three fruits.",
    "Write a short poem about the sea.",
    "Tell me a joke about cats.",
)
DEBRIS = ("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<|im_start", "<|im_end",
          "im_start", "<</SYS>>", "[INST]", "User:", "Assistant:", "\ufffd")
"""Pieces of a chat format the model was not trained on, or of a control token."""
MAX_TOKENS = 96


def default_system_prompt() -> str:
    library = load_builtin_library(None)
    return compose(library.stack(library.profile("default").layers)).system_prompt


def ask(question: str, *, session: str | None = None, banned: tuple[str, ...] = ()
        ) -> GenerationRequest:
    messages = (ChatMessage("system", default_system_prompt()), ChatMessage("user", question))
    return GenerationRequest(messages=messages, temperature=0.0, max_tokens=MAX_TOKENS,
                             session=session, banned=banned)


def open_engine(kind: str, path: Path) -> BatchedBackend | LlamaBackend:
    if kind == "batched":
        return BatchedBackend(path, n_ctx=512, parallel=4, resident=4, n_threads=1,
                              n_threads_batch=1)
    return LlamaBackend(path, n_ctx=512, n_threads=1, cache_bytes=0)


@pytest.fixture(params=["batched", "single"])
async def engine(request: pytest.FixtureRequest, gemma_path: Path
                 ) -> AsyncIterator[BatchedBackend | LlamaBackend]:
    backend = open_engine(request.param, gemma_path)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.stop()


async def test_a_reply_is_plain_text_that_stops_by_itself(
    engine: BatchedBackend | LlamaBackend,
) -> None:
    text = await reply(engine, ask(QUESTIONS[0]))
    assert text.strip()
    assert not [piece for piece in DEBRIS if piece in text], text
    # It ended at the next turn's start, well before the token cap.
    assert engine.count_tokens(text) < MAX_TOKENS - 16, text


async def test_a_banned_word_is_held(engine: BatchedBackend | LlamaBackend) -> None:
    free = await reply(engine, ask(QUESTIONS[0]))
    assert "france" in free.lower()  # the model's answer, so banning it changes something
    held = await reply(engine, ask(QUESTIONS[0], banned=("France",)))
    assert "france" not in held.lower()
    assert held.strip()


@pytest.mark.parametrize("kind", ["batched", "single"])
async def test_the_vocabulary_is_scanned_once_per_load_in_the_worker(
    kind: str, gemma_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans: list[threading.Thread] = []
    original = Vocabulary.__init__

    def counting(self: Vocabulary, model: Any, *, chat_format: str = "auto") -> None:
        scans.append(threading.current_thread())
        original(self, model, chat_format=chat_format)

    monkeypatch.setattr(Vocabulary, "__init__", counting)
    backend = open_engine(kind, gemma_path)
    await backend.start()
    try:
        assert len(scans) == 1  # while loading, before any request
        for words in (("France",), ("Paris", "London"), ("France",)):
            await reply(backend, ask(QUESTIONS[0], banned=words))
    finally:
        await backend.stop()
    assert len(scans) == 1
    assert scans[0] is not threading.main_thread()  # never on the event loop's thread


NEAR_TIE = 2.0
"""Logits between the model's two likeliest next tokens that count as a near tie."""


def top_two_gap(model: Path, tokens: list[int]) -> float:
    """How far the likeliest next token after ``tokens`` leads the second, on one sequence."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(model), n_ctx=512, n_threads=1, logits_all=True,
                  verbose=False)
    try:
        llama.eval(tokens)
        first, second = sorted(llama.scores[len(tokens) - 1], reverse=True)[:2]
        return float(first - second)
    finally:
        llama.close()


async def test_a_reply_alone_and_in_a_batch_of_four_is_the_same_up_to_a_near_tie(
    gemma_path: Path,
) -> None:
    """With a stream per sequence no sequence reads another's cells, so a reply in a batch is
    the one it gets alone; on a CPU whose kernels compute four tokens with another rounding
    than one (AVX-512 here: logits differ by up to about 0.8), it may only part where the
    model all but tied between two tokens, never where it was sure."""
    backend = BatchedBackend(gemma_path, n_ctx=512, parallel=4, resident=4, n_threads=1,
                             n_threads_batch=1, kv_tokens=0)
    await backend.start()
    try:
        requests = [ask(q, session=f"c{i}") for i, q in enumerate(QUESTIONS)]
        alone, prompts = [], []
        for request in requests:
            alone.append(await reply(backend, request))
            slot = backend.engine.table.resident(request.session or "")
            assert slot is not None
            prompts.append(list(slot.tokens))  # what it keeps: the prompt's KV
        together = await asyncio.gather(*(reply(backend, r) for r in requests))
        assert backend.engine.stats.peak_batch == 4
        vocabulary = backend.engine.model
        assert vocabulary is not None
        parted = []
        for prompt, one, other in zip(prompts, alone, together, strict=True):
            if one == other:
                continue
            tokens = vocabulary.tokenize(one)
            # The first token of the reply alone that the reply in the batch did not give.
            at = next(k for k in range(len(tokens))
                      if not other.startswith(vocabulary.detokenize(tokens[:k + 1])))
            parted.append(prompt + tokens[:at])
    finally:
        await backend.stop()
    assert all(text.strip() for text in alone)
    for tokens in parted:
        assert top_two_gap(gemma_path, tokens) < NEAR_TIE
    assert len(parted) < len(requests)  # most replies do not come near a tie at all


async def test_both_engines_give_the_same_reply(gemma_path: Path) -> None:
    replies = []
    for backend in (LlamaBackend(gemma_path, n_ctx=512, n_threads=1, cache_bytes=0),
                    BatchedBackend(gemma_path, n_ctx=512, parallel=2, resident=2,
                                   n_threads=1, n_threads_batch=1, kv_tokens=0)):
        await backend.start()
        try:
            replies.append([await reply(backend, ask(q)) for q in QUESTIONS[:2]])
        finally:
            await backend.stop()
    assert replies[0] == replies[1]


def cabot_ask(gemma_path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CABOT_")}
    environment.update({"CABOT_MODEL": str(gemma_path), "CABOT_N_THREADS": "1",
                        "PYTHONPATH": str(ROOT)})
    return subprocess.run([sys.executable, "-m", "adapters", "ask", *args], cwd=tmp_path,
                          env=environment, capture_output=True, text=True, timeout=300,
                          check=False)


def test_cabot_ask_on_the_base_model_answers_cleanly(gemma_path: Path, tmp_path: Path) -> None:
    result = cabot_ask(gemma_path, tmp_path, "--layer", "base", "--layer", "helpful",
                       "--layer", "precise", QUESTIONS[0])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert not [piece for piece in DEBRIS if piece in result.stdout], result.stdout
    grammar = cabot_ask(gemma_path, tmp_path, "--layer", "base", "--layer", "yes-no",
                        "Is water wet?")
    assert grammar.returncode == 0, grammar.stderr
    assert grammar.stdout.strip() in ("yes", "no")
