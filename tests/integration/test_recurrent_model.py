"""A recurrent model (Mamba) through the bot: a channel's every message is answered.

Such a model keeps one state per sequence, which llama.cpp cannot cut back to a prefix,
so the batched engine cannot keep a returning channel's prompt or copy a shared system
prompt as it does with attention KV: it evaluates each prompt afresh instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.backends.base import Backend
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from tests.helpers.apps import make_app
from tests.helpers.recording import RecordingAdapter, message
from tests.helpers.recurrent_model import WORDS

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
