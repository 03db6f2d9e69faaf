"""The Discord adapter's configuration: ``CABOT_DISCORD_*`` variables or a ``.env`` file."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from bot.settings import settings_config


class DiscordSettings(BaseSettings):
    """Every ``CABOT_DISCORD_*`` setting; built once at start-up and passed to the adapter."""

    model_config = settings_config("CABOT_DISCORD_")

    token: SecretStr | None = Field(
        default=None, description="The bot token; setting it turns the Discord adapter on."
    )
    api_url: str | None = Field(default=None, description="REST base URL (default: Discord's).")
    gateway_url: str | None = Field(
        default=None, description="Gateway websocket URL (default: Discord's)."
    )
    sharded: bool = Field(default=False, description="Use discord.py's AutoShardedClient.")
