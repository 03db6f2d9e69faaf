"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.settings import Settings
from tests.helpers.tiny_models import (
    write_tiny_bert,
    write_tiny_gpt2,
    write_tiny_mamba,
    write_tiny_t5,
)
from tools.models import gemma_path as gemma_model_path

# Loopback fakes must never go through a proxy.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The bundled SmolLM2 model (installed by make)."""
    return Settings(_env_file=None).model_path()  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def gemma_path() -> Path:
    """The Gemma 3 270M base model (no chat template), fetched by ``make test``."""
    path = gemma_model_path()
    if not path.is_file():
        pytest.skip(f"the Gemma base model is not at {path}; 'make gemma' fetches it")
    return path


@pytest.fixture(scope="session")
def recurrent_path(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A tiny recurrent (Mamba) model with the bundled model's tokenizer, written once."""
    return write_tiny_mamba(model_path, tmp_path_factory.mktemp("models") / "mamba.gguf")


@pytest.fixture(scope="session")
def embedding_path(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A tiny embedding (BERT) model, which reads text but writes none, written once."""
    return write_tiny_bert(model_path, tmp_path_factory.mktemp("models") / "bert.gguf")


@pytest.fixture(scope="session")
def short_context_path(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A tiny GPT-2 whose table of positions ends at 128 tokens, written once."""
    return write_tiny_gpt2(model_path, tmp_path_factory.mktemp("models") / "gpt2.gguf")


@pytest.fixture(scope="session")
def encoder_decoder_path(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A tiny encoder-decoder (T5) model, written once."""
    return write_tiny_t5(model_path, tmp_path_factory.mktemp("models") / "t5.gguf")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the /dev/null files llama_cpp opens at import, so exit prints no warning."""
    import sys

    utils = sys.modules.get("llama_cpp._utils")
    for name in ("outnull_file", "errnull_file"):
        handle = getattr(utils, name, None)
        if handle is not None:
            handle.close()
