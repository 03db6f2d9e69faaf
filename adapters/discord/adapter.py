"""The Discord adapter: discord.py in cabot's event loop.

The client is started with ``Client.start()`` (never ``run()``) so it shares the loop
with the core. It answers mentions, replies to the bot and DMs (and every message in a
channel set to always answer: the core decides), turns slash commands into the core's
command text, and never lets model output ping anyone: ``AllowedMentions.none()`` on
every request plus mentions neutralised in the text itself.

Discord errors become ``AdapterError`` subclasses (``adapters.discord.requests``); the
core logs them once (the messages never contain the token) and keeps running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord import app_commands
from lru import LRU

from adapters.discord.attachments import attached, read_attachments
from adapters.discord.automod import fetch_rules
from adapters.discord.client import Endpoints, make_client
from adapters.discord.commands import Interaction, build_commands, command_text
from adapters.discord.connection import GatewayWatch, ended_message
from adapters.discord.convert import (
    PLATFORM,
    incoming_from_interaction,
    incoming_from_message,
    is_chat,
)
from adapters.discord.delivery import MAX_MESSAGE_LENGTH, Delivery
from adapters.discord.limits import ChannelBudget
from adapters.discord.requests import InteractionReply, RequestGate
from adapters.discord.settings import DiscordSettings
from bot.adapter import Capabilities, MessageSink
from bot.commands import Registry, build_registry
from bot.errors import AdapterError, ConfigError
from bot.messages import Command, IncomingMessage, OutgoingMessage, SentMessage
from profiles import Library, load_builtin_library
from profiles.automod import AutoModRule

log = logging.getLogger(__name__)

CHANNEL_LIMIT, CHANNEL_WINDOW = 5, 5.0  # sends and edits per channel per window, s
MIN_RATELIMIT_TIMEOUT = 30.0  # discord.py raises anything lower to 30 s
TYPING_INTERVAL = 8.0  # one indication lasts 10 s on Discord
LOOKUP_CACHE = 256  # uncached threads looked up
SEEN_MESSAGES = 4096
"""Incoming message ids remembered: a resumed session may deliver one again."""

LibraryLookup = Callable[[str, str], Awaitable[Library]]
"""``(platform, community) -> Library``: the names autocomplete offers."""


class DiscordAdapter:
    """cabot on Discord.

    Args:
        settings: the configuration (``CABOT_DISCORD_*``); the token is required.
        library: where autocomplete finds profile and layer names for a community
            (e.g. ``app.resolver.library_for``); default: the built-in library plus
            ``layers_dir``.
        layers_dir: extra layer files for the default ``library`` (``CABOT_LAYERS_DIR``).
        edit_interval: minimum seconds between two edits of a streamed reply.
        guild_ready_timeout: how long discord.py waits for guilds before "ready".
        heartbeat_timeout: seconds without a frame from the gateway (heartbeat ACKs
            included) before the connection is given up and resumed.
        identify_delay: seconds before identifying a new session when the old one could
            not be resumed (Discord allows one IDENTIFY per 5 s).
        start_timeout: how long ``start`` waits for the gateway to be ready.
        sync_commands: register the slash commands with Discord at start-up.
        max_ratelimit_timeout: the longest 429 wait accepted; a longer one fails the
            request (at least 30 s, discord.py's floor).
    """

    name = "discord"

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        library: LibraryLookup | None = None,
        layers_dir: Path | None = None,
        edit_interval: float = 1.0,
        guild_ready_timeout: float = 2.0,
        heartbeat_timeout: float = 60.0,
        identify_delay: float = 5.0,
        start_timeout: float = 60.0,
        sync_commands: bool = True,
        max_ratelimit_timeout: float = MIN_RATELIMIT_TIMEOUT,
        registry: Registry | None = None,
        channel_window: float = CHANNEL_WINDOW,
    ) -> None:
        if settings.token is None:
            raise ConfigError(
                "CABOT_DISCORD_TOKEN is not set; copy the bot token from the Discord "
                "developer portal (Bot -> Reset Token) into it."
            )
        self.capabilities = Capabilities(
            max_message_length=MAX_MESSAGE_LENGTH,
            can_edit=True,
            edit_interval=edit_interval,
            can_type=True,
            typing_interval=TYPING_INTERVAL,
        )
        self._token = settings.token
        self._sharded = settings.sharded
        self._layers_dir = layers_dir
        self._endpoints = Endpoints(settings.api_url, settings.gateway_url)
        self._library = library
        self._registry = registry if registry is not None else build_registry()
        self._builtin: Library | None = None
        self._guild_ready_timeout = guild_ready_timeout
        self._heartbeat_timeout = heartbeat_timeout
        self._identify_delay = identify_delay
        self._watch = GatewayWatch()
        self._seen: LRU[int, None] = LRU(SEEN_MESSAGES)
        self._start_timeout = start_timeout
        self._sync_commands = sync_commands
        self._max_ratelimit_timeout = max(MIN_RATELIMIT_TIMEOUT, max_ratelimit_timeout)
        self._client: discord.Client | None = None
        self._tree: app_commands.CommandTree[Any] | None = None
        self._sink: MessageSink | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._delivery = Delivery(RequestGate(deadline=self._max_ratelimit_timeout),
                                  ChannelBudget(CHANNEL_LIMIT, channel_window))
        self._looked_up: LRU[int, Any] = LRU(LOOKUP_CACHE)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, sink: MessageSink) -> None:
        """Log in, sync the slash commands and connect; returns once the gateway is ready.

        Raises:
            ConfigError: Discord rejected the token.
            AdapterError: Discord could not be reached in time.
        """
        if self._client is not None:
            raise RuntimeError("the Discord adapter is already running")
        self._sink = sink
        self._stopping = False
        self._ready = asyncio.Event()
        self._endpoints.apply()
        self._watch.start()
        client = self._make_client()
        self._client = client
        self._runner = asyncio.create_task(
            client.start(self._token.get_secret_value()), name="discord-client"
        )
        self._runner.add_done_callback(self._client_ended)
        ready = asyncio.create_task(self._ready.wait(), name="discord-ready")
        try:
            await asyncio.wait({self._runner, ready}, timeout=self._start_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if self._ready.is_set():
            user = client.user
            log.info("connected to Discord as %s (%d guilds)", user, len(client.guilds))
            return
        failure = self._runner.exception() if self._runner.done() else None
        last_failure = self._watch.last_failure
        await self.stop()
        if isinstance(failure, discord.LoginFailure):
            raise ConfigError(
                "Discord rejected CABOT_DISCORD_TOKEN; copy a fresh bot token from the "
                "developer portal (Bot -> Reset Token)."
            )
        if isinstance(failure, discord.PrivilegedIntentsRequired):
            raise ConfigError(
                "Discord refused the Message Content intent; switch it on in the developer "
                "portal (Bot -> Privileged Gateway Intents -> Message Content Intent)."
            )
        if failure is not None:
            raise AdapterError(
                f"Could not connect to Discord ({type(failure).__name__}: {failure}); check "
                "the network, CABOT_DISCORD_API_URL and CABOT_DISCORD_GATEWAY_URL."
            )
        tried = f" (last attempt: {last_failure})" if last_failure else ""
        raise AdapterError(
            f"Discord was not ready after {self._start_timeout:.0f} s{tried}; check the "
            "network and CABOT_DISCORD_GATEWAY_URL."
        )

    async def stop(self) -> None:
        """Disconnect and wait for the client to finish."""
        self._stopping = True
        self._watch.stop()
        self._sink = None
        client, self._client = self._client, None
        runner, self._runner = self._runner, None
        try:
            if client is not None:
                await client.close()
            if runner is not None:
                await asyncio.gather(runner, return_exceptions=True)
        finally:
            self._tree = None
            self._endpoints.restore()

    async def wait_closed(self) -> None:
        """Until the client has ended by itself: Discord closed the gateway with a code
        that allows no reconnecting (the error is logged once)."""
        runner = self._runner
        if runner is not None:
            await asyncio.wait({runner})

    def _make_client(self) -> discord.Client:
        client = make_client(
            self,
            sharded=self._sharded,
            gateway_url=self._endpoints.gateway_url,
            max_ratelimit_timeout=self._max_ratelimit_timeout,
            guild_ready_timeout=self._guild_ready_timeout,
            heartbeat_timeout=self._heartbeat_timeout,
            identify_delay=self._identify_delay,
        )
        self._tree = app_commands.CommandTree(client)
        self._tree.error(self._on_tree_error)
        build_commands(self._tree, self._registry, self._run_command,
                       self._library_for_interaction)
        return client

    def _client_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is not None and self._ready.is_set():
            log.error("%s", ended_message(error))

    # -- client events (called by the discord.py client) -----------------------------

    async def on_setup(self) -> None:
        """Before connecting: register the slash commands."""
        if not self._sync_commands or self._tree is None:
            return
        try:
            synced = await self._tree.sync()
            log.info("registered %d slash commands", len(synced))
        except discord.HTTPException as error:
            log.warning(
                "could not register the slash commands (%s); invite the bot with the "
                "applications.commands scope", error,
            )

    def on_ready(self) -> None:
        """The gateway is connected and the guilds are known."""
        self._ready.set()

    def on_connected(self, how: str) -> None:
        """A session started ("new session") or was resumed ("resumed")."""
        self._watch.connected(how)

    def on_disconnect(self) -> None:
        """The gateway connection closed; discord.py reconnects unless it cannot."""
        self._watch.disconnected(self._client.ws if self._client is not None else None)

    async def on_message(self, message: discord.Message) -> None:
        """Every message the bot can see; the core decides which to answer."""
        client, sink = self._client, self._sink
        if client is None or client.user is None or sink is None:
            return
        if message.author.id == client.user.id or not is_chat(message):
            return
        if message.id in self._seen:
            # A resumed session replays events; Discord delivers at least once.
            log.debug("message %s delivered again; already handled", message.id)
            return
        self._seen[message.id] = None
        channel = await self._channel_of(message)
        incoming = incoming_from_message(message, client.user.id, channel)
        if message.attachments and self._registry.is_command(incoming.text):
            # Only a command reads its files (a layer's TOML); chat never downloads them.
            files = await read_attachments(message.attachments)
            incoming = incoming.model_copy(update={"attachments": files})
        await sink(incoming)

    async def _channel_of(self, message: discord.Message) -> Any:
        """The message's channel, looked up once when only its id is known.

        discord.py caches the channels and threads it was told about; a thread it missed
        (e.g. a private one the bot was just added to) arrives as a bare id, and its parent
        channel is needed for the profile to be inherited.
        """
        channel = message.channel
        if (not isinstance(channel, discord.PartialMessageable) or message.guild is None
                or self._client is None):
            return channel
        known = self._looked_up.get(channel.id)
        if known is not None:
            return known
        try:
            found = await self._client.fetch_channel(channel.id)
        except (discord.HTTPException, aiohttp.ClientError) as error:
            log.debug("could not look up channel %s: %s", channel.id, error)
            return channel
        self._looked_up[channel.id] = found
        return found

    async def _run_command(
        self, interaction: Interaction, command: Command, private: bool
    ) -> None:
        reply = InteractionReply(interaction, private)
        text = command_text(command)
        try:
            await reply.acknowledge()
        except (discord.HTTPException, aiohttp.ClientError) as error:
            log.warning("could not acknowledge the slash command %s: %s", text, error)
            return
        sink = self._sink
        if sink is not None:
            incoming = incoming_from_interaction(interaction, text, reply, command)
            files = attached(interaction.namespace)
            if files:
                incoming = incoming.model_copy(
                    update={"attachments": await read_attachments(files)})
            await sink(incoming)

    async def _on_tree_error(
        self, interaction: Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.warning("slash command failed: %s: %s", type(error).__name__, error)

    async def _library_for_interaction(self, interaction: Interaction) -> Library:
        community = (str(interaction.guild_id) if interaction.guild_id is not None
                     else f"dm-{interaction.user.id}")
        if self._library is not None:
            return await self._library(PLATFORM, community)
        if self._builtin is None:
            self._builtin = await asyncio.to_thread(load_builtin_library, self._layers_dir)
        return self._builtin

    # -- Adapter --------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post ``message``: in answer to its interaction, or in its channel (a Discord
        reply to what asked, pinging nobody; ``adapters.discord.delivery``)."""
        return await self._delivery.send(message)

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Replace the text of a posted message."""
        await self._delivery.edit(sent, text)

    async def show_typing(self, message: IncomingMessage) -> None:
        """'cabot is typing…' in the message's channel."""
        await self._delivery.show_typing(message)

    async def automod_rules(self, message: IncomingMessage) -> tuple[AutoModRule, ...]:
        """The AutoMod rules of the server ``message`` came from (``bot.automod``)."""
        if self._client is None:
            raise AdapterError("cabot is not connected to Discord.")
        if message.is_direct or not message.scope.community.isdigit():
            raise AdapterError("AutoMod rules belong to a server: run this in the server.")
        return await fetch_rules(self._client, int(message.scope.community))
