"""Building a cabot App for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import App
from bot.backends.base import Backend
from bot.settings import Settings


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated from the environment, with the database in ``tmp_path``."""
    values: dict[str, Any] = {"db": tmp_path / "cabot.db", "user_rate": 1000}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_app(tmp_path: Path, backend: Backend, **overrides: Any) -> App:
    """An App on ``backend`` with its database in ``tmp_path``."""
    return App(make_settings(tmp_path, **overrides), backend=backend)
