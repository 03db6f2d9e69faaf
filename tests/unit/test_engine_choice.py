"""CABOT_ENGINE picks the inference backend; nothing is loaded until the app starts."""

from __future__ import annotations

from pathlib import Path

from bot.app import create_backend
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from tests.helpers.apps import make_settings


def test_the_batched_engine_is_the_default(tmp_path: Path) -> None:
    backend = create_backend(make_settings(tmp_path, parallel=6))
    assert isinstance(backend, BatchedBackend)
    assert backend.max_parallel == 6


def test_the_single_sequence_engine_stays_available(tmp_path: Path) -> None:
    backend = create_backend(make_settings(tmp_path, engine="single"))
    assert isinstance(backend, LlamaBackend)
    assert backend.max_parallel == 1
