"""CABOT_ENGINE picks the inference backend; nothing is loaded until the app starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import create_backend
from bot.backends.batched import BatchedBackend
from bot.backends.llama import LlamaBackend
from bot.errors import ConfigError
from tests.helpers.apps import make_settings


def test_the_batched_engine_is_the_default(tmp_path: Path) -> None:
    backend = create_backend(make_settings(tmp_path, parallel=6))
    assert isinstance(backend, BatchedBackend)
    assert backend.max_parallel == 6


def test_the_single_sequence_engine_stays_available(tmp_path: Path) -> None:
    backend = create_backend(make_settings(tmp_path, engine="single"))
    assert isinstance(backend, LlamaBackend)
    assert backend.max_parallel == 1


def test_flash_attention_is_off_by_default_in_every_engine(tmp_path: Path) -> None:
    # Its CPU kernel reads a prompt chunk under 64 tokens query by query (2.5x slower on
    # an AVX-512 CPU), and a returning channel's new message is such a chunk.
    shared = create_backend(make_settings(tmp_path))
    exact = create_backend(make_settings(tmp_path, kv_tokens=0))
    single = create_backend(make_settings(tmp_path, engine="single"))
    assert isinstance(shared, BatchedBackend) and isinstance(exact, BatchedBackend)
    assert isinstance(single, LlamaBackend)
    assert not shared.engine.flash_attn
    # The two layouts whose replies stay bit-identical with each other run without it.
    assert not exact.engine.flash_attn and not single.flash_attn


def test_flash_attention_on_or_off_holds_in_every_engine(tmp_path: Path) -> None:
    for value, expected in (("on", True), ("off", False)):
        shared = create_backend(make_settings(tmp_path, flash_attn=value))
        exact = create_backend(make_settings(tmp_path, flash_attn=value, kv_tokens=0))
        single = create_backend(make_settings(tmp_path, flash_attn=value, engine="single"))
        assert isinstance(shared, BatchedBackend) and isinstance(exact, BatchedBackend)
        assert isinstance(single, LlamaBackend)
        assert shared.engine.flash_attn is exact.engine.flash_attn is expected
        assert single.flash_attn is expected


def test_a_q8_0_cache_runs_without_flash_attention(tmp_path: Path) -> None:
    backend = create_backend(make_settings(tmp_path, kv_type="q8_0"))
    assert isinstance(backend, BatchedBackend)
    assert not backend.engine.flash_attn
    with pytest.raises(ConfigError) as caught:
        create_backend(make_settings(tmp_path, kv_type="q8_0", flash_attn="on"))
    assert "CABOT_FLASH_ATTN=on with CABOT_KV_TYPE=q8_0" in str(caught.value)
    assert "CABOT_FLASH_ATTN=auto or CABOT_KV_TYPE=f16" in str(caught.value)
