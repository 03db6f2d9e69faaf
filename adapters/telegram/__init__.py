"""cabot on Telegram, through python-telegram-bot.

- ``adapter``: ``TelegramAdapter``, the lifecycle and the incoming side.
- ``admins``: who moderates a group, looked up and cached briefly.
- ``convert``: Telegram messages as neutral messages.
- ``limits``: Telegram's flood limits and its way of counting length (UTF-16).
- ``outbox``: sends and edits, paced per chat.
- ``polling``: long-poll outages, logged once each (python-telegram-bot retries by itself).
- ``redaction``: the token kept out of every log line.
- ``render``: model output as Telegram HTML.
- ``webhook``: receiving updates by webhook.
- ``settings``: ``TelegramSettings`` (``CABOT_TELEGRAM_*``).

Inside this package ``import telegram`` is the SDK: imports are absolute.
"""

from adapters.telegram.adapter import TelegramAdapter
from adapters.telegram.settings import TelegramSettings

__all__ = ["TelegramAdapter", "TelegramSettings"]
