"""Where settings come from at start-up, and which platforms the entry point connects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.discord import DiscordSettings
from adapters.main import load_settings, platform_adapters
from adapters.telegram import TelegramSettings
from bot.errors import ConfigError
from tests.helpers.apps import discord_settings, make_app, telegram_settings
from tests.helpers.fake_backend import FakeBackend


def test_each_platform_reads_its_own_variables_and_the_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("CABOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CABOT_DISCORD_TOKEN=from-the-file\nCABOT_DISCORD_SHARDED=1\n")
    monkeypatch.setenv("CABOT_TELEGRAM_EDIT_INTERVAL", "0.5")
    discord = load_settings(DiscordSettings)
    telegram = load_settings(TelegramSettings)
    assert discord.token is not None and discord.token.get_secret_value() == "from-the-file"
    assert discord.sharded and "from-the-file" not in repr(discord)
    assert telegram.token is None and telegram.edit_interval == 0.5
    monkeypatch.setenv("CABOT_TELEGRAM_WEBHOOK_PORT", "https")
    with pytest.raises(ConfigError, match="invalid settings: CABOT_TELEGRAM_WEBHOOK_PORT"):
        load_settings(TelegramSettings)


def test_an_adapter_is_built_for_each_platform_with_a_token(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeBackend())
    assert platform_adapters(app, discord_settings(), telegram_settings()) == []
    both = platform_adapters(app, discord_settings(token="discord-token"),
                             telegram_settings(token="123:telegram-token"))
    assert [adapter.name for adapter in both] == ["discord", "telegram"]
