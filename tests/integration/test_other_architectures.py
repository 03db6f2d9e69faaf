"""Models that are not attention decoders: a recurrent one is answered, an embedding one
is refused with a clear message.

A recurrent model (Mamba) keeps one state per sequence, which llama.cpp cannot cut back
to a prefix, so the batched engine cannot keep a returning channel's prompt or copy a
shared system prompt as it does with attention KV: it evaluates each prompt afresh.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("kind", ["batched", "single"])
async def test_an_embedding_model_is_refused_at_start_saying_why(
    kind: str, embedding_path: Path
) -> None:
    backend = engine(kind, embedding_path)
    with pytest.raises(ConfigError) as refused:
        await backend.start()
    await backend.stop()
    assert str(refused.value) == (
        "CABOT_MODEL is an embedding or encoder model (bert), which reads text but does "
        "not write it; point it at a model that generates text (an instruct or base model).")
