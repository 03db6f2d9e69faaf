"""Files attached to a Discord command, read for the core (a layer's ``.toml``)."""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
import discord

from bot.attachments import from_bytes, size_limit, too_large, unreadable
from bot.messages import Attachment

MAX_FILES = 4
"""Attachments read per command; the rest are ignored."""


async def read_attachments(files: Iterable[discord.Attachment]) -> tuple[Attachment, ...]:
    """The files (each up to `bot.attachments.size_limit`), downloaded from Discord's CDN."""
    read: list[Attachment] = []
    for file in list(files)[:MAX_FILES]:
        if file.size > size_limit(file.filename):
            read.append(too_large(file.filename, file.size))
            continue
        try:
            data = await file.read()
        except (discord.HTTPException, aiohttp.ClientError) as error:
            read.append(unreadable(file.filename, file.size, str(error) or type(error).__name__))
            continue
        read.append(from_bytes(file.filename, data))
    return tuple(read)


def attached(namespace: Iterable[tuple[str, object]]) -> list[discord.Attachment]:
    """The attachment options of a slash command, from its namespace."""
    return [value for _, value in namespace if isinstance(value, discord.Attachment)]
