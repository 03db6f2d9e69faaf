"""CABOT_BACKEND=remote builds the remote backend from CABOT_REMOTE_*; nothing connects yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import create_backend
from bot.backends.remote import TRAITS, RemoteBackend
from bot.errors import ConfigError
from tests.helpers.apps import make_settings


def test_remote_settings_build_a_pool_of_every_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, backend="remote", remote_kind="vllm",
                             remote_urls="http://gpu1:8000/v1, http://gpu2:8000",
                             remote_parallel=8, remote_api_key="s3cret")
    backend = create_backend(settings)
    assert isinstance(backend, RemoteBackend)
    assert backend.max_parallel == 16  # until the servers are probed
    assert backend.enforces == TRAITS["vllm"].enforces
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.remote_api_key)


@pytest.mark.parametrize(("kind", "rules"), [
    ("llama-server", {"banned", "grammar", "stop", "max_tokens"}),
    ("llama-cpp-python", {"banned", "grammar", "stop", "max_tokens"}),
    ("vllm", {"banned", "grammar", "stop", "max_tokens"}),
    ("ollama", {"stop", "max_tokens"}),
    ("openai", {"stop", "max_tokens"}),
])
def test_each_kind_says_what_it_enforces_at_sampling(tmp_path: Path, kind: str,
                                                     rules: set[str]) -> None:
    settings = make_settings(tmp_path, backend="remote", remote_kind=kind,
                             remote_urls="http://127.0.0.1:1")
    assert create_backend(settings).enforces == rules


def test_a_remote_backend_without_urls_is_refused_with_the_setting_named(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CABOT_REMOTE_URLS"):
        create_backend(make_settings(tmp_path, backend="remote"))
