"""The Discord adapter: discord.py in cabot's event loop.

The client is started with ``Client.start()`` (never ``run()``) so it shares the loop
with the core. It answers mentions, replies to the bot and DMs (and every message in a
channel set to always answer: the core decides), turns slash commands into the core's
command text, and never lets model output ping anyone: ``AllowedMentions.none()`` on
every request plus mentions neutralised in the text itself.

Discord errors become ``AdapterError`` subclasses here; the core logs them once (the
messages never contain the token) and keeps running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord_commands import Interaction, build_commands
from adapters.discord_convert import (
    INTERACTION_KEY,
    MESSAGE_KEY,
    PLATFORM,
    incoming_from_interaction,
    incoming_from_message,
    is_chat,
    neutralize_mentions,
)
from bot.adapter import Capabilities, MessageSink
from bot.errors import (
    AdapterError,
    ConfigError,
    ForbiddenError,
    MessageGoneError,
    PlatformRateLimitError,
)
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage
from bot.settings import Settings
from profiles import Library, load_builtin_library

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 2000
SENT_KEY = "discord_sent"
"""``SentMessage.extras`` key of the discord.py message object, for later edits."""
MIN_RATELIMIT_TIMEOUT = 30.0  # discord.py raises anything lower to 30 s
TYPING_INTERVAL = 8.0  # one indication lasts 10 s on Discord

LibraryLookup = Callable[[str, str], Awaitable[Library]]
"""``(platform, community) -> Library``: the names autocomplete offers."""
T = TypeVar("T")


def _no_pings() -> discord.AllowedMentions:
    return discord.AllowedMentions.none()


def _intents() -> discord.Intents:
    """Exactly what cabot reads: guilds, their messages, DMs and message text.

    Message content is privileged: it must also be switched on in the developer portal.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class InteractionReply:
    """Answers one slash-command interaction in place.

    The interaction is deferred the moment it arrives (Discord drops it after 3 s),
    visible only to the invoker when the answer is likely private. The first answer then
    fills that deferred message when its visibility matches, or replaces it otherwise
    (a refusal of a public command stays private); later answers are follow-ups.
    """

    def __init__(self, interaction: Interaction, private: bool) -> None:
        self.interaction = interaction
        self.private = private
        self._original_used = False
        self._lock = asyncio.Lock()

    async def acknowledge(self) -> None:
        await self.interaction.response.defer(ephemeral=self.private, thinking=True)

    async def send(self, text: str, ephemeral: bool) -> discord.Message:
        async with self._lock:
            if not self._original_used:
                self._original_used = True
                if ephemeral == self.private:
                    return await self.interaction.edit_original_response(
                        content=text, allowed_mentions=_no_pings()
                    )
                await self.interaction.delete_original_response()
            return await self.interaction.followup.send(
                text, ephemeral=ephemeral, allowed_mentions=_no_pings(), wait=True
            )


class _AdapterEvents:
    """The client events, handed to the adapter."""

    cabot: DiscordAdapter

    async def setup_hook(self) -> None:
        await self.cabot._on_setup()

    async def on_ready(self) -> None:
        self.cabot._on_ready()

    async def on_message(self, message: discord.Message) -> None:
        await self.cabot._on_message(message)


class _Client(_AdapterEvents, discord.Client):
    pass


class _ShardedClient(_AdapterEvents, discord.AutoShardedClient):
    pass


class _Endpoints:
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


class DiscordAdapter:
    """cabot on Discord.

    Args:
        settings: ``discord_token`` (required), ``discord_api_url``,
            ``discord_gateway_url`` and ``discord_sharded`` are used.
        library: where autocomplete finds profile and layer names for a community
            (e.g. ``app.resolver.library_for``); default: the built-in library plus
            ``CABOT_LAYERS_DIR``.
        edit_interval: minimum seconds between two edits of a streamed reply.
        guild_ready_timeout: how long discord.py waits for guilds before "ready".
        start_timeout: how long ``start`` waits for the gateway to be ready.
        sync_commands: register the slash commands with Discord at start-up.
        max_ratelimit_timeout: the longest 429 wait accepted; a longer one fails the
            request (at least 30 s, discord.py's floor).
    """

    name = "discord"

    def __init__(
        self,
        settings: Settings,
        *,
        library: LibraryLookup | None = None,
        edit_interval: float = 1.0,
        guild_ready_timeout: float = 2.0,
        start_timeout: float = 60.0,
        sync_commands: bool = True,
        max_ratelimit_timeout: float = MIN_RATELIMIT_TIMEOUT,
    ) -> None:
        if settings.discord_token is None:
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
        self._token = settings.discord_token
        self._sharded = settings.discord_sharded
        self._layers_dir = settings.layers_dir
        self._endpoints = _Endpoints(settings.discord_api_url, settings.discord_gateway_url)
        self._library = library
        self._builtin: Library | None = None
        self._guild_ready_timeout = guild_ready_timeout
        self._start_timeout = start_timeout
        self._sync_commands = sync_commands
        self._max_ratelimit_timeout = max(MIN_RATELIMIT_TIMEOUT, max_ratelimit_timeout)
        self._client: discord.Client | None = None
        self._tree: app_commands.CommandTree[Any] | None = None
        self._sink: MessageSink | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._replied: OrderedDict[str, None] = OrderedDict()
        self._blocked: dict[int, float] = {}

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
        raise AdapterError(
            f"Discord was not ready after {self._start_timeout:.0f} s; check the network "
            "and CABOT_DISCORD_GATEWAY_URL."
        )

    async def stop(self) -> None:
        """Disconnect and wait for the client to finish."""
        self._stopping = True
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

    def _make_client(self) -> discord.Client:
        options: dict[str, Any] = {
            "intents": _intents(),
            "allowed_mentions": _no_pings(),
            "max_ratelimit_timeout": self._max_ratelimit_timeout,
            "guild_ready_timeout": self._guild_ready_timeout,
            "chunk_guilds_at_startup": False,
        }
        client: _Client | _ShardedClient
        if self._sharded:
            client = _ShardedClient(**options)
            self._pin_sharded_gateway(client)
        else:
            client = _Client(**options)
        client.cabot = self
        self._tree = app_commands.CommandTree(client)
        self._tree.error(self._on_tree_error)
        build_commands(self._tree, self._run_command, self._library_for_interaction)
        return client

    def _pin_sharded_gateway(self, client: discord.Client) -> None:
        """Make sharded connections use ``CABOT_DISCORD_GATEWAY_URL`` too.

        ``AutoShardedClient`` takes the gateway from ``GET /gateway/bot``, which a proxy
        in front of the REST API may pass through unchanged.
        """
        gateway = self._endpoints.gateway_url
        if gateway is None:
            return
        original = client.http.get_bot_gateway

        async def get_bot_gateway() -> tuple[int, str, Any]:
            shards, _url, limits = await original()
            return shards, str(gateway), limits

        client.http.get_bot_gateway = get_bot_gateway  # type: ignore[method-assign]

    def _client_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is not None and self._ready.is_set():
            log.error("the Discord connection ended: %s: %s", type(error).__name__, error)

    # -- events ---------------------------------------------------------------------

    async def _on_setup(self) -> None:
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

    def _on_ready(self) -> None:
        self._ready.set()

    async def _on_message(self, message: discord.Message) -> None:
        client, sink = self._client, self._sink
        if client is None or client.user is None or sink is None:
            return
        if message.author.id == client.user.id or not is_chat(message):
            return
        channel = await self._channel_of(message)
        await sink(incoming_from_message(message, client.user.id, channel))

    async def _channel_of(self, message: discord.Message) -> Any:
        """The message's channel, fetched when only its id is known (an uncached thread)."""
        channel = message.channel
        if (isinstance(channel, discord.PartialMessageable) and message.guild is not None
                and self._client is not None):
            try:
                return await self._client.fetch_channel(channel.id)
            except (discord.HTTPException, aiohttp.ClientError) as error:
                log.debug("could not look up channel %s: %s", channel.id, error)
        return channel

    async def _run_command(self, interaction: Interaction, text: str, private: bool) -> None:
        reply = InteractionReply(interaction, private)
        try:
            await reply.acknowledge()
        except (discord.HTTPException, aiohttp.ClientError) as error:
            log.warning("could not acknowledge the slash command %s: %s", text, error)
            return
        sink = self._sink
        if sink is not None:
            await sink(incoming_from_interaction(interaction, text, reply))

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
        """Post ``message``: in answer to its interaction, or in its channel.

        The first part of a reply (and every private notice) is a Discord reply to the
        message that asked, so it is clear who is answered; nobody is pinged.
        """
        incoming = message.in_reply_to
        text = neutralize_mentions(message.text, MAX_MESSAGE_LENGTH)
        handle = incoming.extras.get(INTERACTION_KEY)
        posted: discord.Message
        if isinstance(handle, InteractionReply):
            posted = await self._call(self._bounded(handle.send(text, message.ephemeral)),
                                      incoming)
        else:
            source = self._source(incoming)
            self._check_not_blocked(source.channel.id, incoming)
            channel = source.channel
            if message.ephemeral or self._first_reply(incoming.message_id):
                request = channel.send(
                    text, allowed_mentions=_no_pings(),
                    reference=source.to_reference(fail_if_not_exists=False),
                )
            else:
                request = channel.send(text, allowed_mentions=_no_pings())
            posted = await self._call(request, incoming, channel_id=source.channel.id)
        return SentMessage(message_id=str(posted.id), in_reply_to=incoming,
                           extras={SENT_KEY: posted})

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Replace the text of a posted message (a 404 means someone deleted it)."""
        posted = sent.extras.get(SENT_KEY)
        if not isinstance(posted, discord.Message):
            raise AdapterError("That message was not posted on Discord by this adapter.")
        request = posted.edit(content=neutralize_mentions(text, MAX_MESSAGE_LENGTH),
                              allowed_mentions=_no_pings())
        if isinstance(posted, discord.WebhookMessage | discord.InteractionMessage):
            await self._call(self._bounded(request), sent.in_reply_to, editing=True)
            return
        self._check_not_blocked(posted.channel.id, sent.in_reply_to, request)
        await self._call(request, sent.in_reply_to, editing=True, channel_id=posted.channel.id)

    async def show_typing(self, message: IncomingMessage) -> None:
        """'cabot is typing…' in the message's channel (an interaction shows 'thinking')."""
        if INTERACTION_KEY in message.extras:
            return
        channel = self._source(message).channel
        await self._call(_typing_once(channel), message)

    # -- helpers --------------------------------------------------------------------

    @staticmethod
    def _source(incoming: IncomingMessage) -> discord.Message:
        source = incoming.extras.get(MESSAGE_KEY)
        if not isinstance(source, discord.Message):
            raise AdapterError("That message did not come from Discord.")
        return source

    def _first_reply(self, message_id: str) -> bool:
        if message_id in self._replied:
            return False
        self._replied[message_id] = None
        while len(self._replied) > 1024:
            self._replied.popitem(last=False)
        return True

    def _check_not_blocked(self, channel_id: int, incoming: IncomingMessage,
                           pending: Awaitable[Any] | None = None) -> None:
        """Refuse at once while Discord's last long 429 for this channel still runs.

        Retrying sooner would only collect more 429s, and Discord bans clients that pile
        up invalid requests.
        """
        until = self._blocked.get(channel_id)
        if until is None:
            return
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self._blocked[channel_id]
            return
        if isinstance(pending, Coroutine):
            pending.close()
        raise PlatformRateLimitError(
            f"Discord asked cabot to wait {left:.0f} s more before posting in "
            f"{_where(incoming)}.", left,
        )

    async def _bounded(self, request: Awaitable[T]) -> T:
        """An interaction request with a deadline (discord.py waits out webhook 429s)."""
        async with asyncio.timeout(self._max_ratelimit_timeout):
            return await request

    async def _call(self, request: Awaitable[T], incoming: IncomingMessage, *,
                    editing: bool = False, channel_id: int | None = None) -> T:
        """Await a discord.py request, translating its errors into cabot's."""
        where = _where(incoming)
        try:
            return await request
        except discord.RateLimited as error:
            if channel_id is not None:
                loop_time = asyncio.get_running_loop().time()
                self._blocked[channel_id] = loop_time + error.retry_after
            raise PlatformRateLimitError(
                f"Discord asked cabot to wait {error.retry_after:.0f} s before posting in "
                f"{where}; the message was dropped rather than held that long.",
                error.retry_after,
            ) from None
        except discord.Forbidden as error:
            raise ForbiddenError(
                f"cabot may not post in {where} (Discord: {error.text or error.status}); give "
                "its role View Channel, Send Messages and Send Messages in Threads there."
            ) from None
        except discord.NotFound as error:
            if editing:
                raise MessageGoneError(
                    f"A reply in {where} was deleted while cabot was writing it."
                ) from None
            raise AdapterError(f"Discord no longer knows this place ({where}): {error.text}"
                               ) from None
        except discord.HTTPException as error:
            raise AdapterError(
                f"Discord refused a request in {where}: {error.status} {error.text}"
            ) from None
        except aiohttp.ClientError as error:
            raise AdapterError(
                f"Cannot reach Discord ({type(error).__name__}); check the network and "
                "CABOT_DISCORD_API_URL."
            ) from None
        except TimeoutError:  # our deadline on an interaction answer
            raise PlatformRateLimitError(
                f"Discord did not take cabot's answer in {where} within "
                f"{self._max_ratelimit_timeout:.0f} s; it was dropped.",
                self._max_ratelimit_timeout,
            ) from None
        except OSError as error:
            raise AdapterError(
                f"Cannot reach Discord ({type(error).__name__}); check the network and "
                "CABOT_DISCORD_API_URL."
            ) from None


def _where(incoming: IncomingMessage) -> str:
    return f"Discord channel {incoming.scope.thread or incoming.scope.channel}"


async def _typing_once(channel: Any) -> None:
    # Awaiting discord.py's Typing sends one indication (it lasts 10 s on Discord).
    await channel.typing()
