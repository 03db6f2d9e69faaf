"""Fixtures shared by the unit tests: an open store, and an App with a recording adapter.

A module scripts the App by overriding ``backend`` (what the model says) or
``app_settings`` (settings beyond the test defaults of ``tests.helpers.apps``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.store import Store
from tests.helpers.apps import make_app
from tests.helpers.fake_backend import FakeBackend
from tests.helpers.recording import RecordingAdapter


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """An open store on a fresh database file."""
    async with Store(tmp_path / "cabot.db") as store:
        yield store


@pytest.fixture
def backend() -> FakeBackend:
    """The scripted backend ``app`` runs on."""
    return FakeBackend()


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings ``app`` is built with, beyond the test defaults."""
    return {}


@pytest.fixture
async def app(
    tmp_path: Path, backend: FakeBackend, app_settings: dict[str, Any]
) -> AsyncIterator[App]:
    """An App on ``backend``, stopped after the test."""
    app = make_app(tmp_path, backend, **app_settings)
    yield app
    await app.stop()


@pytest.fixture
async def chat(app: App) -> RecordingAdapter:
    """A recording adapter that ``app`` has started with: what users would see."""
    adapter = RecordingAdapter()
    await app.start([adapter])
    return adapter
