"""The Telegram adapter's configuration: ``CABOT_TELEGRAM_*`` variables or a ``.env`` file."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from bot.settings import settings_config


class TelegramSettings(BaseSettings):
    """Every ``CABOT_TELEGRAM_*`` setting; built once at start-up and passed to the adapter."""

    model_config = settings_config("CABOT_TELEGRAM_")

    token: SecretStr | None = Field(
        default=None, description="The token from @BotFather; setting it turns the adapter on."
    )
    base_url: str | None = Field(default=None, description="Bot API address (default: Telegram's).")
    base_file_url: str | None = Field(
        default=None,
        description="Where files are downloaded from (default: Telegram's, or beside "
        "base_url: .../bot becomes .../file/bot).",
    )
    webhook_url: str | None = Field(
        default=None, description="Receive updates by webhook at this URL instead of polling."
    )
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: SecretStr | None = Field(
        default=None, description="Webhook secret token (default: derived from the token)."
    )
    edit_interval: float = Field(
        default=1.0, ge=0, description="Seconds between two edits in one Telegram chat."
    )
    group_rate: int = Field(
        default=20, ge=1, description="Messages and edits per minute the bot posts in a group."
    )
    max_retry_wait: float = Field(
        default=30.0, ge=0, description="Longest Telegram flood wait cabot sits out, s."
    )
    admin_cache: float = Field(
        default=60.0, ge=0, description="Seconds a group's administrator list is reused."
    )
    poll_interval: float = Field(
        default=0.0, ge=0,
        description="Seconds between two long polls. After a failed poll the next waits "
        "1 s (or 1.5 times this interval, if set), each further one 1.5 times longer, up "
        "to 30 s.",
    )
