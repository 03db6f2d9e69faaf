"""Receiving Telegram updates by webhook on a small aiohttp server.

python-telegram-bot's own webhook server needs tornado, an extra dependency; aiohttp is
already installed (discord.py uses it). Telegram signs each delivery with the secret
token given to ``setWebhook``; anything else is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from aiohttp import web
from telegram import Bot, Update

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def derived_secret(token: str) -> str:
    """A stable webhook secret derived from the bot token (Telegram allows [A-Za-z0-9_-])."""
    return hashlib.sha256(b"cabot-webhook:" + token.encode()).hexdigest()[:48]


class WebhookServer:
    """Puts every update Telegram POSTs to ``path`` into ``queue``.

    Args:
        bot: decodes updates.
        queue: python-telegram-bot's ``Application.update_queue``.
        path: the URL path Telegram posts to.
        listen: the address to bind.
        port: the port to bind (0: any free port; see ``port`` after start).
        secret: the secret token Telegram must send.
    """

    def __init__(
        self, bot: Bot, queue: Any, path: str, listen: str, port: int, secret: str
    ) -> None:
        self._bot = bot
        self._queue = queue
        self._path = path or "/"
        self._listen = listen
        self._port = port
        self._secret = secret
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        """Start listening."""
        app = web.Application()
        app.router.add_post(self._path, self._receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._listen, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        if runner.addresses:  # the bound port, when 0 was asked for
            self.port = int(runner.addresses[0][1])
        log.info("listening for Telegram webhooks on %s:%s%s", self._listen, self.port, self._path)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("refused a webhook call without the right secret from %s",
                        request.remote)
            return web.Response(status=403)
        try:
            data = await request.json()
            update = Update.de_json(data, self._bot)
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400)
        if update is not None:
            await self._queue.put(update)
        return web.Response(status=200)
