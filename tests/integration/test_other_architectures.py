"""Models that are not attention decoders: a recurrent one is answered, an embedding one
is refused with a clear message.

A recurrent model (Mamba) keeps one state per sequence, which llama.cpp cannot cut back
to a prefix, so the batched engine cannot keep a returning channel's prompt or copy a
shared system prompt as it does with attention KV: it evaluates each prompt afresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.backends.base import Backend
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from bot.errors import ConfigError
from tests.helpers.apps import make_app
from tests.helpers.recording import RecordingAdapter, message
from tests.helpers.tiny_models import WORDS

pytestmark = pytest.mark.model

ROOT = Path(__file__).parents[2]


def engine(kind: str, path: Path) -> Backend:
    if kind == "batched":
        return BatchedBackend(path, n_ctx=512, parallel=2, resident=2, n_threads=1,
                              n_threads_batch=1)
    return LlamaBackend(path, n_ctx=512, n_threads=1)


def only_words(text: str) -> bool:
    """Whether ``text`` is made of the model's two words (and nothing else)."""
    for word in WORDS:
        text = text.replace(word, "")
    return not text.strip()


@pytest.mark.parametrize("kind", ["batched", "single"])
async def test_every_message_of_a_returning_channel_is_answered(
    kind: str, recurrent_path: Path, tmp_path: Path
) -> None:
    app = make_app(tmp_path, engine(kind, recurrent_path), reply_tokens=16)
    chat = RecordingAdapter()
    await app.start([chat])
    try:
        # Three turns in one channel (each returns to its resident sequence), then a new
        # channel with the same system prompt (which attention KV would copy).
        for text, channel in (("hello there", "general"), ("and again?", "general"),
                              ("one more", "general"), ("hi", "random")):
            await app.router.handle(chat, message(text, channel=channel))
    finally:
        await app.stop()
    replies = chat.texts()
    assert len(replies) == 4, replies
    assert all(reply.strip() and only_words(reply) for reply in replies), replies


REFUSED = {
    "embedding": "CABOT_MODEL is an embedding or encoder model (bert), which reads text but "
                 "does not write it; point it at a model that generates text (an instruct "
                 "or base model).",
    "encoder-decoder": "CABOT_MODEL is an encoder-decoder model (t5); cabot runs models that "
                       "only decode, as chat, instruct and base models do: point it at one of "
                       "those.",
}


@pytest.mark.parametrize("kind", ["batched", "single"])
@pytest.mark.parametrize("model", sorted(REFUSED))
async def test_a_model_that_cannot_generate_is_refused_at_start_saying_why(
    kind: str, model: str, embedding_path: Path, encoder_decoder_path: Path
) -> None:
    path = embedding_path if model == "embedding" else encoder_decoder_path
    backend = engine(kind, path)
    with pytest.raises(ConfigError) as refused:
        await backend.start()
    await backend.stop()
    assert str(refused.value) == REFUSED[model]


@pytest.mark.parametrize("kind", ["batched", "single"])
def test_a_model_trained_on_a_short_context_keeps_every_conversation_within_it(
    kind: str, short_context_path: Path, tmp_path: Path
) -> None:
    # CABOT_N_CTX is 512; the model knows 128 positions. Each exchange takes about 70
    # tokens, so from the second message on the history must be cut to fit (llama.cpp
    # aborts the whole process at position 128 of such a model).
    said = [f"Message {index}: tell me something about the weather today, please."
            for index in range(5)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CABOT_")}
    environment.update({"CABOT_MODEL": str(short_context_path), "CABOT_ENGINE": kind,
                        "CABOT_N_CTX": "512", "CABOT_N_THREADS": "1",
                        "PYTHONPATH": str(ROOT)})
    result = subprocess.run(
        [sys.executable, "-m", "adapters", "run"], cwd=tmp_path, env=environment,
        input="\n".join(said) + "\n", capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    replies = [line for line in result.stdout.splitlines() if "cabot> " in line]
    assert len(replies) == len(said), result.stdout
    # Random weights at the default temperature write noise, but no reply is an error.
    assert not [line for line in replies if "⚠" in line or "fit" in line], replies
    assert "trained on a context of 128 tokens, less than CABOT_N_CTX=512" in result.stderr


ENGINE_AT_ITS_WINDOW = """
import asyncio, sys
from pathlib import Path
from bot.backends.base import ChatMessage, GenerationRequest
from tests.integration.test_other_architectures import engine

async def main() -> None:
    backend = engine(sys.argv[1], Path(sys.argv[2]))
    await backend.start()
    try:
        request = GenerationRequest(messages=(ChatMessage("user", "Tell me a long story."),),
                                    temperature=0.0, max_tokens=1000)
        prompt = backend.count_tokens("Tell me a long story.")
        text = "".join([piece async for piece in backend.generate(request)])
        print(backend.n_ctx, prompt, backend.count_tokens(text))
    finally:
        await backend.stop()

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["batched", "single"])
def test_an_engine_never_generates_past_the_trained_context(
    kind: str, short_context_path: Path, tmp_path: Path
) -> None:
    # Asked for 1,000 tokens where llama.cpp's own context is larger than the 128 the
    # model knows (it rounds the size up), each engine stops at the model's window.
    result = subprocess.run(
        [sys.executable, "-c", ENGINE_AT_ITS_WINDOW, kind, str(short_context_path)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    window, prompt, generated = (int(n) for n in result.stdout.split()[-3:])
    assert window == 128
    assert 0 < generated <= window - prompt
