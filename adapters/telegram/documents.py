"""Files sent with a Telegram command (a layer's ``.toml``), read for the core.

A document arrives with the command as its caption, or the command replies to the message
that carries it. Its content comes through the Bot API's ``getFile`` and a download from
the file address; only commands read files, and only small ones.
"""

from __future__ import annotations

from telegram import Bot, Document, Message
from telegram.error import TelegramError

from adapters.telegram.settings import TelegramSettings
from bot.attachments import from_bytes, size_limit, too_large, unreadable
from bot.messages import Attachment


def file_url_for(settings: TelegramSettings) -> str | None:
    """Where files are downloaded from: the setting, else beside a custom ``base_url``."""
    if settings.base_file_url:
        return settings.base_file_url
    base = settings.base_url
    if base and base.rstrip("/").endswith("/bot"):
        return base.rstrip("/")[: -len("/bot")] + "/file/bot"
    return None


def document_of(message: Message) -> Document | None:
    """The document sent with ``message``, or with the message it replies to."""
    if message.document is not None:
        return message.document
    replied = message.reply_to_message
    return replied.document if replied is not None else None


async def read_document(bot: Bot, document: Document) -> Attachment:
    """The document (up to `bot.attachments.size_limit`), or why it was not read."""
    name = document.file_name or "document"
    size = document.file_size or 0
    if size > size_limit(name):
        return too_large(name, size)
    try:
        file = await bot.get_file(document.file_id)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as error:
        return unreadable(name, size, error.message)
    if len(data) > size_limit(name):
        return too_large(name, len(data))
    return from_bytes(name, data)
