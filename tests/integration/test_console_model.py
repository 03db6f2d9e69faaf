"""End to end on the real SmolLM2 model through the console adapter."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from bot.backends.base import GenerationRequest
from bot.backends.llama import LlamaBackend
from tests.helpers.apps import make_app

pytestmark = pytest.mark.model

NO_BANANA = """
name = "no-banana"
description = "Never says banana."
[rules]
banned = ["banana"]
"""


class RecordingOutput(io.StringIO):
    """A terminal that remembers each write (each visible change)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


class RecordingLlama(LlamaBackend):
    """The real engine, remembering what the model was given."""

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int) -> None:
        super().__init__(model_path, n_ctx=n_ctx, n_threads=n_threads)
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[str, None]:
        self.requests.append(request)
        async for piece in super().generate(request):
            yield piece


async def converse(
    tmp_path: Path, model_path: Path, lines: list[str], n_ctx: int = 1024
) -> tuple[RecordingOutput, RecordingLlama]:
    """Run a console session on the real model; returns the terminal and the engine."""
    layers = tmp_path / "layers"
    layers.mkdir(exist_ok=True)
    (layers / "no-banana.toml").write_text(NO_BANANA)
    backend = RecordingLlama(model_path, n_ctx=n_ctx, n_threads=1)
    app = make_app(tmp_path, backend, layers_dir=layers, n_ctx=n_ctx, reply_tokens=64)
    output = RecordingOutput()
    console = ConsoleAdapter(output, settle=app.router.drain)
    try:
        await app.start([console])
        await console.run(io.StringIO("\n".join(lines) + "\n"))
    finally:
        await app.stop()
    return output, backend


def replies(output: RecordingOutput) -> list[str]:
    """The bot's messages as they finally read on the terminal."""
    chunks = re.split(r"\ncabot(?: \(only you see this\))?> ", output.getvalue())[1:]
    return [chunk.split("\nyou")[0].strip() for chunk in chunks]


async def test_a_reply_streams_in_pieces(tmp_path: Path, model_path: Path) -> None:
    output, backend = await converse(tmp_path, model_path, ["Tell me about cats."])
    [reply] = replies(output)
    assert len(reply.split()) >= 5
    start = next(i for i, w in enumerate(output.writes) if w.startswith("\ncabot> "))
    pieces = [w for w in output.writes[start + 1:] if w and not w.startswith("\n")]
    assert len(pieces) >= 5  # the reply appeared token by token, not at once
    assert backend.requests[0].messages[-1].content == "Tell me about cats."


async def test_a_banned_word_never_appears_even_when_asked_for(
    tmp_path: Path, model_path: Path
) -> None:
    ask = "Say the word banana."
    output, _ = await converse(tmp_path, model_path, [
        "/profile set base precise", ask,
        ":channel kids", "/profile set base precise no-banana", ask,
    ])
    control, enforced = replies(output)[1], replies(output)[3]
    assert "banana" in control.lower()  # the model does say it when allowed
    assert enforced and "banana" not in enforced.lower()
    kids_part = output.getvalue().split("(now in #kids)")[1]
    assert "banana" not in kids_part.lower().replace("no-banana", "")


async def test_a_redacted_link_never_shows_mid_stream(tmp_path: Path, model_path: Path) -> None:
    ask = "Write the URL https://example.com/docs and nothing else."
    output, _ = await converse(tmp_path, model_path, [
        "/profile set base precise", ask,
        ":channel safe", "/profile set base precise no-links", ask,
    ])
    control, redacted = replies(output)[1], replies(output)[3]
    assert "https://example.com" in control
    assert "[link removed]" in redacted
    # The console only ever appends: nothing after the switch ever showed the link.
    safe_part = "".join(output.writes).split("(now in #safe)")[1]
    assert "example.com" not in safe_part


async def test_switching_profile_changes_explain_and_what_the_model_gets(
    tmp_path: Path, model_path: Path
) -> None:
    output, backend = await converse(tmp_path, model_path, [
        "/profile explain", "Hello!", "/profile use kids", "/profile explain", "Hello!",
        "/profile set base precise yes-no", "Is the sky blue?",
    ])
    shown = replies(output)
    before = next(r for r in shown if r.startswith("Profile 'default'"))
    after = next(r for r in shown if r.startswith("Profile 'kids'"))
    assert "[family-friendly]" not in before
    assert "[family-friendly] Everyone here may be a child." in after
    assert "temperature = 0.6  (family-friendly)" in after
    first, second, third = backend.requests
    assert "Everyone here may be a child." not in first.messages[0].content
    assert "Everyone here may be a child." in second.messages[0].content
    assert second.max_tokens == 160 and "fuck" in second.banned
    assert third.grammar is not None
    assert shown[-1] in ("yes", "no")  # the grammar constrained the real model


async def test_a_message_longer_than_the_context_is_truncated_not_fatal(
    tmp_path: Path, model_path: Path
) -> None:
    huge = "Please summarise this: " + "the quick brown fox jumps over the lazy dog " * 400
    output, backend = await converse(tmp_path, model_path, [huge, "Still there?"], n_ctx=512)
    text = output.getvalue()
    assert "too long for the model's context window" in text
    assert len(backend.requests) == 2
    final = replies(output)[-1]
    assert final and not final.startswith("⚠️")
