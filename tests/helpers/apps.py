"""Building a cabot App, and the platforms' settings, for tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from adapters.discord.settings import DiscordSettings
from adapters.telegram.settings import TelegramSettings
from bot.app import App
from bot.backends.base import Backend
from bot.settings import Settings


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings isolated from the environment, with the database in ``tmp_path``."""
    # Limits and background work that would get in the way of other tests are off; the
    # tests of each turn them on (the probes a switch runs: switch_probes=True).
    values: dict[str, Any] = {"db": tmp_path / "cabot.db", "user_rate": 1000,
                              "flood_messages": 1000, "switch_probes": False}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_app(tmp_path: Path, backend: Backend, **overrides: Any) -> App:
    """An App on ``backend`` with its database in ``tmp_path``."""
    return App(make_settings(tmp_path, **overrides), backend=backend)


class _GivenOnly(BaseSettings):
    """Settings from the constructor's arguments alone: no environment, no ``.env``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class _GivenDiscordSettings(_GivenOnly, DiscordSettings):
    pass


class _GivenTelegramSettings(_GivenOnly, TelegramSettings):
    pass


def discord_settings(**values: Any) -> DiscordSettings:
    """Exactly these Discord settings (validated), whatever the environment says."""
    return _GivenDiscordSettings(**values)


def telegram_settings(**values: Any) -> TelegramSettings:
    """Exactly these Telegram settings (validated), whatever the environment says."""
    return _GivenTelegramSettings(**values)
