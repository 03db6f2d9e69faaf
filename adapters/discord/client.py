"""The discord.py client cabot runs: intents, events, and where it connects."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


class ClientEvents(Protocol):
    """What the client hands its events to (the adapter)."""

    async def on_setup(self) -> None: ...

    def on_ready(self) -> None: ...

    async def on_message(self, message: discord.Message) -> None: ...

    def on_connected(self, how: str) -> None: ...

    def on_disconnect(self) -> None: ...


def no_pings() -> discord.AllowedMentions:
    """Mentions that notify nobody: not everyone, here, roles, users or the replied-to."""
    return discord.AllowedMentions.none()


def intents() -> discord.Intents:
    """Exactly what cabot reads: guilds, their messages, DMs and message text.

    Message content is privileged: it must also be switched on in the developer portal.
    """
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


class _Events:
    events: ClientEvents
    identify_delay: float

    async def setup_hook(self) -> None:
        await self.events.on_setup()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False
                                   ) -> None:
        # discord.py waits 5 s before identifying again (Discord allows one IDENTIFY per
        # 5 s); the wait is a setting so tests of new sessions need not sit it out.
        if not initial:
            await asyncio.sleep(self.identify_delay)

    async def on_message(self, message: discord.Message) -> None:
        await self.events.on_message(message)

    def connection_event(self, event: str) -> None:
        # Handed over at once, in order, rather than as event tasks: discord.py may dispatch
        # them while it closes ("disconnect", or "ready" when guilds were still loading),
        # when a task can no longer be scheduled and its coroutine is never awaited.
        if event == "ready":
            self.events.on_ready()
        elif event == "connect":
            self.events.on_connected("new session")
        elif event == "resumed":
            self.events.on_connected("resumed")
        elif event == "disconnect":
            self.events.on_disconnect()


class _Client(_Events, discord.Client):
    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        self.connection_event(event)
        super().dispatch(event, *args, **kwargs)


class _ShardedClient(_Events, discord.AutoShardedClient):
    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        self.connection_event(event)
        super().dispatch(event, *args, **kwargs)


class Endpoints:
    """The REST and gateway addresses, overridden while an adapter runs.

    discord.py keeps them in class attributes, so they are set at each start and put
    back at stop (unless something else changed them meanwhile).
    """

    def __init__(self, api_url: str | None, gateway_url: str | None) -> None:
        self.api_url = api_url.rstrip("/") if api_url else None
        self.gateway_url = yarl.URL(gateway_url) if gateway_url else None
        self._saved: tuple[str, yarl.URL] | None = None

    def apply(self) -> None:
        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        if self.api_url is not None:
            Route.BASE = self.api_url
        if self.gateway_url is not None:
            DiscordWebSocket.DEFAULT_GATEWAY = self.gateway_url

    def restore(self) -> None:
        if self._saved is None:
            return
        base, gateway = self._saved
        self._saved = None
        if self.api_url is not None and Route.BASE == self.api_url:
            Route.BASE = base
        if self.gateway_url is not None and DiscordWebSocket.DEFAULT_GATEWAY == self.gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = gateway


def make_client(
    events: ClientEvents,
    *,
    sharded: bool,
    gateway_url: yarl.URL | None,
    max_ratelimit_timeout: float,
    guild_ready_timeout: float,
    heartbeat_timeout: float = 60.0,
    identify_delay: float = 5.0,
) -> discord.Client:
    """A client (``AutoShardedClient`` if ``sharded``) that hands its events to ``events``.

    Every request it makes carries ``AllowedMentions.none()``; a 429 asking to wait longer
    than ``max_ratelimit_timeout`` raises ``discord.RateLimited`` instead of waiting. A
    connection that receives nothing for ``heartbeat_timeout`` seconds is resumed; a new
    session is identified ``identify_delay`` seconds after the old one was refused.
    """
    options: dict[str, Any] = {
        "intents": intents(),
        "allowed_mentions": no_pings(),
        "max_ratelimit_timeout": max_ratelimit_timeout,
        "guild_ready_timeout": guild_ready_timeout,
        "heartbeat_timeout": heartbeat_timeout,
        "chunk_guilds_at_startup": False,
    }
    client: _Client | _ShardedClient
    if sharded:
        client = _ShardedClient(**options)
        if gateway_url is not None:
            _pin_bot_gateway(client, gateway_url)
    else:
        client = _Client(**options)
    client.events = events
    client.identify_delay = identify_delay
    return client


def _pin_bot_gateway(client: discord.Client, gateway: yarl.URL) -> None:
    """Make sharded connections use the configured gateway too.

    ``AutoShardedClient`` takes the gateway from ``GET /gateway/bot``, which a proxy in
    front of the REST API may pass through unchanged.
    """
    original = client.http.get_bot_gateway

    async def get_bot_gateway() -> tuple[int, str, Any]:
        shards, _url, limits = await original()
        return shards, str(gateway), limits

    client.http.get_bot_gateway = get_bot_gateway  # type: ignore[method-assign]
