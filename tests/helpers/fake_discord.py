"""A fake Discord on 127.0.0.1: REST API and gateway websocket, in Discord's wire format.

The real discord.py client talks to it unchanged (only ``Route.BASE`` and the gateway URL
point here). It rejects what Discord rejects — messages over 2,000 characters, empty
messages, a bot token it does not know, interactions answered after 3 seconds or twice —
and keeps a per-channel message budget (sends and edits together) that answers real 429s
with a ``Via`` header and a JSON ``retry_after``. The budget and the clock are injectable.

Every request is recorded, and the messages are kept as users would see them: content,
who was actually pinged (from the content and ``allowed_mentions``), ephemeral or not.
The gateway (sessions, RESUME, and connections failing) is ``FakeDiscord.gateway``, in
``tests.helpers.fake_discord_gateway``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from tests.helpers.fake_discord_gateway import FakeGateway
from tests.helpers.fake_discord_wire import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    DISCORD_EPOCH_MS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    INTERACTION_DEADLINE,
    JSON,
    LOADING,
    MANAGE_CHANNELS,
    MANAGE_GUILD,
    ROLE_MENTION,
    USER_MENTION,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    RateBucket,
    RateBudget,
    Recorded,
    apply_mentions,
    error,
    invalid_content,
    json_response,
    now_iso,
    read_json,
    too_many_requests,
)

__all__ = [
    "MANAGE_CHANNELS",
    "MANAGE_GUILD",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMessage",
    "RateBudget",
    "Recorded",
]

Handler = Callable[[web.Request], Any]


class FakeDiscord:
    """REST + gateway fake. Use as ``async with FakeDiscord() as discord: ...``.

    Args:
        budget: the per-channel message budget.
        clock: seconds, for the budget, interaction deadlines and records
            (default: the event loop's clock, which discord.py also sleeps on).
        token: the bot token the fake accepts.
    """

    def __init__(
        self,
        *,
        budget: RateBudget | None = None,
        clock: Callable[[], float] | None = None,
        token: str = "fake-bot-token",
    ) -> None:
        self.budget = budget if budget is not None else RateBudget()
        self._clock = clock
        self.token = token
        self._ids = itertools.count(1)
        self.users: dict[str, JSON] = {}
        self.application_id = self.snowflake()
        self.bot = self.make_user("cabot", bot=True)
        self.owner = self.make_user("cabot-developer")
        self.guilds: dict[str, FakeGuild] = {}
        self.channel_guild: dict[str, str] = {}
        self.dm_channels: dict[str, JSON] = {}
        self.messages: dict[str, FakeMessage] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str, JSON] = {}
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self._buckets: dict[str, RateBucket] = {}
        self._injected: dict[str, list[tuple[int, float]]] = {}
        self.forbidden: set[str] = set()
        self.closed_dms: set[str] = set()
        """Users who take no direct messages from the server's members (privacy settings)."""
        self.automod_rules: dict[str, list[JSON]] = {}
        """Each guild's AutoMod rules, in Discord's wire format (``add_automod_rule``)."""
        self.files: dict[str, bytes] = {}
        """Attached files' content by attachment id, served at their CDN address."""
        self.downloads: list[str] = []
        """Attachment ids downloaded, in order."""
        self.message_content = True
        """Whether the Message Content intent is switched on in the developer portal."""
        self._changed = asyncio.Condition()
        self.gateway = FakeGateway(self, self._notify)
        """The gateway websocket: sessions, RESUME, and ways to make connections fail."""
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self.gateway.routes())
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._download)
        api = "/api/v10"
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self._get_me),
            ("POST", "/users/@me/channels", self._create_dm),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway_bot),
            ("PUT", "/applications/{app}/commands", self._put_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands),
            ("GET", "/channels/{channel}", self._get_channel),
            ("GET", "/guilds/{guild}/auto-moderation/rules", self._get_automod_rules),
            ("POST", "/channels/{channel}/messages", self._post_message),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._patch_message),
            ("DELETE", "/channels/{channel}/messages/{message}", self._delete_message),
            ("POST", "/channels/{channel}/typing", self._typing),
            ("POST", "/interactions/{interaction}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app}/{token}", self._followup),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._patch_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        await self.gateway.stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    def now(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    # -- the world ------------------------------------------------------------------

    def snowflake(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def make_user(self, name: str, *, bot: bool = False) -> JSON:
        user: JSON = {
            "id": self.snowflake(), "username": name, "discriminator": "0",
            "global_name": name, "avatar": None, "bot": bot, "public_flags": 0,
        }
        self.users[user["id"]] = user
        return user

    def add_guild(self, name: str, owner: JSON) -> FakeGuild:
        guild_id = self.snowflake()
        guild = FakeGuild(id=guild_id, name=name, owner_id=owner["id"])
        guild.roles.append({"id": guild_id, "name": "@everyone",
                            "permissions": str(EVERYONE_PERMISSIONS)})
        self.guilds[guild_id] = guild
        self.add_member(guild, owner)
        self.add_member(guild, self.bot)
        return guild

    def add_role(self, guild: FakeGuild, name: str, permissions: int) -> str:
        role_id = self.snowflake()
        guild.roles.append({"id": role_id, "name": name, "permissions": str(permissions)})
        return role_id

    def add_member(self, guild: FakeGuild, user: JSON, roles: Iterable[str] = ()) -> None:
        guild.members[user["id"]] = list(roles)

    def add_channel(self, guild: FakeGuild, name: str) -> str:
        channel_id = self.snowflake()
        guild.channels.append({
            "id": channel_id, "type": 0, "name": name, "guild_id": guild.id,
            "position": len(guild.channels), "permission_overwrites": [], "nsfw": False,
            "parent_id": None, "topic": None, "rate_limit_per_user": 0,
        })
        self.channel_guild[channel_id] = guild.id
        return channel_id

    def add_thread(self, guild: FakeGuild, parent_id: str, name: str) -> str:
        thread_id = self.snowflake()
        guild.threads.append({
            "id": thread_id, "type": 11, "name": name, "guild_id": guild.id,
            "parent_id": parent_id, "owner_id": guild.owner_id, "message_count": 0,
            "member_count": 1, "rate_limit_per_user": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                "archive_timestamp": now_iso(), "locked": False},
        })
        self.channel_guild[thread_id] = guild.id
        return thread_id

    def dm_channel(self, user: JSON) -> str:
        """The id of the DM channel between ``user`` and the bot."""
        for channel_id, channel in self.dm_channels.items():
            if channel["recipients"][0]["id"] == user["id"]:
                return channel_id
        channel_id = self.snowflake()
        self.dm_channels[channel_id] = {"id": channel_id, "type": 1, "recipients": [user],
                                        "last_message_id": None}
        return channel_id

    def permissions(self, guild: FakeGuild, user_id: str) -> int:
        """The member's guild permissions (roles; owner and administrator have all)."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        mine = {guild.id, *guild.members.get(user_id, [])}
        value = 0
        for role in guild.roles:
            if role["id"] in mine:
                value |= int(role["permissions"])
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def _channel_json(self, channel_id: str) -> JSON | None:
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id]
        guild = self.guilds.get(self.channel_guild.get(channel_id, ""))
        if guild is None:
            return None
        return next((c for c in [*guild.channels, *guild.threads] if c["id"] == channel_id),
                    None)

    def _member_json(self, guild: FakeGuild, user_id: str, with_user: bool) -> JSON:
        member: JSON = {"roles": guild.members.get(user_id, []), "flags": 0,
                        "joined_at": now_iso(), "deaf": False, "mute": False, "nick": None}
        if with_user:
            member["user"] = self.users[user_id]
        return member

    def guild_payload(self, guild: FakeGuild) -> JSON:
        return {
            "id": guild.id, "name": guild.name, "owner_id": guild.owner_id, "icon": None,
            "unavailable": False, "member_count": len(guild.members), "large": False,
            "roles": [{**r, "position": i, "color": 0, "hoist": False, "managed": False,
                       "mentionable": False, "flags": 0} for i, r in enumerate(guild.roles)],
            "channels": guild.channels, "threads": guild.threads,
            "members": [self._member_json(guild, uid, True) for uid in guild.members],
            "emojis": [], "stickers": [], "features": [], "voice_states": [],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [],
            "soundboard_sounds": [], "premium_tier": 0, "mfa_level": 0,
            "verification_level": 0, "explicit_content_filter": 0,
            "default_message_notifications": 0, "system_channel_flags": 0,
            "preferred_locale": "en-US", "nsfw_level": 0, "joined_at": now_iso(),
        }

    def add_automod_rule(
        self,
        guild: FakeGuild,
        name: str,
        *,
        trigger_type: int = 1,
        keyword_filter: Iterable[str] = (),
        regex_patterns: Iterable[str] = (),
        allow_list: Iterable[str] = (),
        presets: Iterable[int] = (),
        enabled: bool = True,
    ) -> JSON:
        """An AutoMod rule as a server admin makes it (Discord's limits checked).

        ``trigger_type``: 1 keyword, 3 spam, 4 keyword preset, 5 mention spam.
        """
        keywords, patterns, allowed = list(keyword_filter), list(regex_patterns), list(allow_list)
        if len(keywords) > 1000 or any(len(k) > 60 for k in keywords):
            raise ValueError("Discord: at most 1000 keywords of at most 60 characters")
        if len(patterns) > 10 or any(len(p) > 260 for p in patterns):
            raise ValueError("Discord: at most 10 regular expressions of at most 260 characters")
        if len(allowed) > (1000 if trigger_type == 4 else 100):
            raise ValueError("Discord: too many allow-list entries")
        metadata: JSON
        if trigger_type == 1:
            metadata = {"keyword_filter": keywords, "regex_patterns": patterns,
                        "allow_list": allowed}
        elif trigger_type == 4:
            metadata = {"presets": list(presets), "allow_list": allowed}
        elif trigger_type == 5:
            metadata = {"mention_total_limit": 5, "mention_raid_protection_enabled": False}
        else:
            metadata = {}
        rule: JSON = {
            "id": self.snowflake(), "guild_id": guild.id, "name": name,
            "creator_id": guild.owner_id, "event_type": 1, "trigger_type": trigger_type,
            "trigger_metadata": metadata,
            "actions": [{"type": 1, "metadata": {"custom_message": "Blocked by AutoMod"}}],
            "enabled": enabled, "exempt_roles": [], "exempt_channels": [],
        }
        self.automod_rules.setdefault(guild.id, []).append(rule)
        return rule

    # -- what users do --------------------------------------------------------------

    async def say(
        self,
        author: JSON,
        channel_id: str,
        content: str,
        *,
        reply_to: str | None = None,
        files: dict[str, bytes] | None = None,
    ) -> FakeMessage:
        """``author`` posts ``content`` in a guild channel, thread or DM channel, with
        ``files`` (name to content) attached."""
        message = self.new_message(author, channel_id, content, reply_to=reply_to)
        message.attachments = [self.attach(channel_id, name, data)
                               for name, data in (files or {}).items()]
        await self.dispatch("MESSAGE_CREATE", self.message_payload(message))
        return message

    def attach(self, channel_id: str, filename: str, data: bytes) -> JSON:
        """An uploaded file, as Discord describes an attachment (its CDN ``url`` here)."""
        attachment_id = self.snowflake()
        self.files[attachment_id] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{channel_id}/{attachment_id}/{filename}"
        return {"id": attachment_id, "filename": filename, "size": len(data), "url": url,
                "proxy_url": url, "content_type": "application/toml; charset=utf-8",
                "flags": 0}

    def new_message(
        self, author: JSON, channel_id: str, content: str, *, reply_to: str | None = None
    ) -> FakeMessage:
        """A message ``author`` wrote, recorded but not delivered (``say`` delivers it)."""
        message = FakeMessage(
            id=self.snowflake(), channel_id=channel_id, author_id=author["id"],
            content=content, at=self.now(), reply_to=reply_to,
        )
        self.messages[message.id] = message
        return message

    async def dm(self, author: JSON, content: str) -> FakeMessage:
        """``author`` sends the bot a direct message."""
        return await self.say(author, self.dm_channel(author), content)

    async def invoke(
        self,
        author: JSON,
        channel_id: str,
        command: str,
        subcommand: str | None = None,
        *,
        autocomplete: str | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
        **options: str,
    ) -> FakeInteraction:
        """``author`` runs ``/command [subcommand] option:value ...``.

        With ``autocomplete`` set to an option name, that option is being typed instead:
        an autocomplete interaction whose choices land in ``FakeInteraction.choices``.
        ``files`` fills attachment options: option name to (file name, content).
        """
        interaction = self.new_interaction(author, channel_id, command, subcommand,
                                           autocomplete=autocomplete, files=files, **options)
        await self.dispatch("INTERACTION_CREATE", interaction.payload)
        return interaction

    def new_interaction(
        self,
        author: JSON,
        channel_id: str,
        command: str,
        subcommand: str | None = None,
        *,
        autocomplete: str | None = None,
        files: dict[str, tuple[str, bytes]] | None = None,
        **options: str,
    ) -> FakeInteraction:
        """An interaction as ``invoke`` makes it, recorded but not delivered."""
        if command not in self.commands:
            raise AssertionError(f"/{command} was never registered by the bot")
        option_list: list[JSON] = [
            {"name": name, "type": 3, "value": value,
             **({"focused": True} if name == autocomplete else {})}
            for name, value in options.items()
        ]
        # An attachment option's value is the attachment's id; the attachment itself is in
        # data.resolved.attachments.
        resolved = {name: self.attach(channel_id, filename, data)
                    for name, (filename, data) in (files or {}).items()}
        option_list += [{"name": name, "type": 11, "value": attachment["id"]}
                        for name, attachment in resolved.items()]
        if subcommand is not None:
            option_list = [{"name": subcommand, "type": 1, "options": option_list}]
        interaction_id = self.snowflake()
        token = f"interaction-token-{interaction_id}"
        channel = self._channel_json(channel_id)
        assert channel is not None, f"unknown channel {channel_id}"
        payload: JSON = {
            "id": interaction_id, "application_id": self.application_id,
            "type": 4 if autocomplete else 2, "token": token, "version": 1,
            "channel_id": channel_id, "channel": channel,
            "data": {"id": self.commands[command]["id"], "name": command, "type": 1,
                     "options": option_list,
                     **({"resolved": {"attachments": {
                         a["id"]: a for a in resolved.values()}}} if resolved else {})},
            "locale": "en-US", "entitlements": [], "attachment_size_limit": 10 << 20,
            "app_permissions": str(ALL_PERMISSIONS),
        }
        guild = self.guilds.get(self.channel_guild.get(channel_id, ""))
        if guild is not None:
            member = self._member_json(guild, author["id"], True)
            member["permissions"] = str(self.permissions(guild, author["id"]))
            payload.update(guild_id=guild.id, member=member, guild_locale="en-US", context=0,
                           authorizing_integration_owners={"0": guild.id})
        else:
            payload.update(user=author, context=1,
                           authorizing_integration_owners={"0": author["id"]})
        interaction = FakeInteraction(
            id=interaction_id, token=token, user_id=author["id"], channel_id=channel_id,
            created_at=self.now(), payload=payload,
        )
        self.interactions[token] = interaction
        return interaction

    def delete(self, message_id: str) -> None:
        """A moderator deletes a message."""
        self.messages[message_id].deleted = True

    def fail_next(self, channel_id: str, status: int, *, retry_after: float = 0.0,
                  times: int = 1) -> None:
        """Answer the next ``times`` message requests in ``channel_id`` with ``status``."""
        self._injected.setdefault(channel_id, []).extend([(status, retry_after)] * times)

    # -- what tests look at ---------------------------------------------------------

    def visible(self, channel_id: str, *, author_id: str | None = None) -> list[FakeMessage]:
        """Messages everyone sees in a channel, oldest first."""
        return [
            m for m in self.messages.values()
            if m.channel_id == channel_id and not m.deleted and not m.ephemeral
            and not m.loading and (author_id is None or m.author_id == author_id)
        ]

    def bot_messages(self, channel_id: str) -> list[FakeMessage]:
        return self.visible(channel_id, author_id=self.bot["id"])

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        """Recorded requests whose method matches ``method`` and path ``pattern`` (regexes)."""
        regex = re.compile(pattern)
        return [r for r in self.requests
                if re.fullmatch(method, r.method) and regex.search(r.path)]

    @property
    def invalid_requests(self) -> int:
        """401, 403 and 429 answers (Discord bans clients that pile these up)."""
        return sum(1 for r in self.requests if r.status in (401, 403, 429))

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked after every request the fake answers).

        ``within`` only bounds a broken test; passing tests never wait on it.
        """
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- gateway --------------------------------------------------------------------

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a DISPATCH event to every gateway session."""
        await self.gateway.dispatch(event, data)

    async def revoke_token(self) -> None:
        """The token is reset in the developer portal: sessions end with 4004."""
        self.token = f"{self.token}-revoked"
        await self.gateway.close(4004)

    # -- REST -----------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        entry = Recorded(request.method, request.path, dict(request.query), body, self.now())
        if request.path.startswith("/api/"):
            self.requests.append(entry)
        needs_token = request.path.startswith("/api/") and not request.path.startswith(
            ("/api/v10/webhooks/", "/api/v10/interactions/")
        )
        response: web.StreamResponse
        if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
            response = error(401, 0, "401: Unauthorized")
        else:
            try:
                response = await handler(request)
            except Exception as bug:  # a bug in the fake must fail the test, not be retried
                self.errors.append(f"{request.method} {request.path}: {bug!r}")
                raise
        entry.status = response.status
        entry.headers = dict(response.headers)
        await self._notify()
        return response

    async def _download(self, request: web.Request) -> web.Response:
        """An attachment from the CDN (no token: its address is the credential)."""
        attachment_id = request.match_info["attachment"]
        data = self.files.get(attachment_id)
        if data is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(attachment_id)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _create_dm(self, request: web.Request) -> web.Response:
        """A DM channel with a user (it exists whatever their settings; posting may fail)."""
        body = await read_json(request) or {}
        user = self.users.get(str(body.get("recipient_id", "")))
        if user is None:
            return error(400, 50035, "Invalid Form Body")
        return json_response(self._channel_json(self.dm_channel(user)))

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.bot, "verified": True, "mfa_enabled": False,
                               "flags": 0, "locale": "en-US"})

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response({
            "id": self.application_id, "name": "cabot", "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": self.owner,
            "verify_key": "0" * 64, "flags": 0, "team": None, "summary": "",
            "rpc_origins": [], "bot": self.bot,
        })

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response({
            "url": self.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999,
                                    "reset_after": 14400000, "max_concurrency": 1},
        })

    async def _put_commands(self, request: web.Request) -> web.Response:
        echoed = []
        for command in await read_json(request) or []:
            known = self.commands.get(command["name"])
            command_id = known["id"] if known else self.snowflake()
            full = {**command, "id": command_id, "application_id": self.application_id,
                    "version": self.snowflake(), "default_member_permissions":
                    command.get("default_member_permissions"), "type": command.get("type", 1)}
            if "guild" in request.match_info:
                full["guild_id"] = request.match_info["guild"]
            self.commands[command["name"]] = full
            echoed.append(full)
        return json_response(echoed)

    async def _get_automod_rules(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(request.match_info["guild"])
        if guild is None:
            return error(404, 10004, "Unknown Guild")
        if not self.permissions(guild, self.bot["id"]) & MANAGE_GUILD:
            return error(403, 50013, "Missing Permissions")
        return json_response(self.automod_rules.get(guild.id, []))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self._channel_json(request.match_info["channel"])
        if channel is None:
            return error(404, 10003, "Unknown Channel")
        return json_response(channel)

    def message_payload(self, message: FakeMessage) -> JSON:
        if message.author_id == self.bot["id"]:
            mentioned, roles = message.pinged_users, message.pinged_roles
        else:
            # A person's message: Discord resolves the mentions typed in it.
            mentioned = USER_MENTION.findall(message.content)
            roles = ROLE_MENTION.findall(message.content)
        data: JSON = {
            "id": message.id, "channel_id": message.channel_id, "type": 0,
            "content": message.content, "author": self.users[message.author_id],
            "timestamp": now_iso(), "edited_timestamp": now_iso() if message.edits else None,
            "tts": False, "mention_everyone": message.pinged_everyone,
            "mentions": [self.users[u] for u in mentioned if u in self.users],
            "mention_roles": roles, "attachments": message.attachments, "embeds": [],
            "pinned": False,
            "flags": (EPHEMERAL if message.ephemeral else 0)
            | (LOADING if message.loading else 0), "components": [],
        }
        guild_id = self.channel_guild.get(message.channel_id)
        if guild_id is not None:
            data["guild_id"] = guild_id
            data["member"] = self._member_json(self.guilds[guild_id], message.author_id, False)
        if message.reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {"type": 0, "message_id": message.reply_to,
                                         "channel_id": message.channel_id,
                                         **({"guild_id": guild_id} if guild_id else {})}
            replied = self.messages.get(message.reply_to)
            data["referenced_message"] = (
                self.message_payload(replied) if replied and not replied.deleted else None
            )
        return data

    def _spend(self, channel_id: str) -> web.Response | dict[str, str]:
        """Charge the channel's budget: a 429 response, or the rate-limit headers."""
        now = self.now()
        bucket = self._buckets.setdefault(channel_id, RateBucket(self.budget))
        injected = self._injected.get(channel_id)
        if injected:
            status, retry_after = injected.pop(0)
            if status != 429:
                return error(status, {403: 50013, 404: 10008}.get(status, 0),
                              {403: "Missing Permissions", 404: "Unknown Message"}.get(
                                  status, "Error"))
            return too_many_requests(retry_after, bucket.headers(now))
        wait = bucket.take(now)
        if wait is not None:
            return too_many_requests(wait, bucket.headers(now))
        return bucket.headers(now)

    async def _post_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        body = await read_json(request)
        if self._channel_json(channel_id) is None:
            return error(404, 10003, "Unknown Channel")
        if channel_id in self.forbidden:
            return error(403, 50013, "Missing Permissions")
        dm = self.dm_channels.get(channel_id)
        if dm is not None and dm["recipients"][0]["id"] in self.closed_dms:
            return error(403, 50007, "Cannot send messages to this user")
        invalid = invalid_content(body)
        if invalid is not None:
            return invalid
        spent = self._spend(channel_id)
        if isinstance(spent, web.Response):
            return spent
        reference = body.get("message_reference") or {}
        replied = self.messages.get(str(reference.get("message_id", "")))
        if reference and (replied is None or replied.deleted):
            if reference.get("fail_if_not_exists", True):
                return error(400, 50035, "Invalid Form Body", {"message_reference": {
                    "_errors": [{"code": "REPLIES_UNKNOWN_MESSAGE",
                                 "message": "Unknown message"}]}})
            replied = None
        message = FakeMessage(
            id=self.snowflake(), channel_id=channel_id, author_id=self.bot["id"],
            content=body["content"], at=self.now(),
            reply_to=replied.id if replied else None,
        )
        apply_mentions(message, body.get("allowed_mentions"),
                             replied.author_id if replied else None)
        self.messages[message.id] = message
        data = self.message_payload(message)
        await self.dispatch("MESSAGE_CREATE", data)
        return json_response(data, headers=spent)

    def _find(self, channel_id: str, message_id: str) -> FakeMessage | None:
        message = self.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel_id:
            return None
        return message

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self._find(request.match_info["channel"], request.match_info["message"])
        if message is None:
            return error(404, 10008, "Unknown Message")
        return json_response(self.message_payload(message))

    async def _patch_message(self, request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        message = self._find(channel_id, request.match_info["message"])
        if message is None:
            return error(404, 10008, "Unknown Message")
        if message.author_id != self.bot["id"]:
            return error(403, 50005, "Cannot edit a message authored by another user")
        invalid = invalid_content(await read_json(request))
        if invalid is not None:
            return invalid
        spent = self._spend(channel_id)
        if isinstance(spent, web.Response):
            return spent
        self._edit(message, await read_json(request))
        return json_response(self.message_payload(message), headers=spent)

    def _edit(self, message: FakeMessage, body: JSON) -> None:
        message.content = body["content"]
        message.edits.append(self.now())
        message.loading = False
        replied = self.messages.get(message.reply_to or "")
        apply_mentions(message, body.get("allowed_mentions", message.allowed_mentions),
                             replied.author_id if replied else None)

    async def _delete_message(self, request: web.Request) -> web.Response:
        message = self._find(request.match_info["channel"], request.match_info["message"])
        if message is None:
            return error(404, 10008, "Unknown Message")
        message.deleted = True
        return web.Response(status=204)

    async def _typing(self, request: web.Request) -> web.Response:
        if request.match_info["channel"] in self.forbidden:
            return error(403, 50013, "Missing Permissions")
        return web.Response(status=204)

    # -- interactions ---------------------------------------------------------------

    def _interaction(self, token: str) -> FakeInteraction | None:
        return self.interactions.get(token)

    def _interaction_message(self, interaction: FakeInteraction, body: JSON,
                             ephemeral: bool, loading: bool = False) -> FakeMessage:
        message = FakeMessage(
            id=self.snowflake(), channel_id=interaction.channel_id,
            author_id=self.bot["id"], content=(body or {}).get("content") or "",
            at=self.now(), ephemeral=ephemeral, loading=loading,
            interaction_id=interaction.id,
        )
        apply_mentions(message, (body or {}).get("allowed_mentions"), None)
        self.messages[message.id] = message
        return message

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request.match_info["token"])
        if interaction is None or interaction.id != request.match_info["interaction"]:
            return error(404, 10062, "Unknown interaction")
        if self.now() - interaction.created_at > INTERACTION_DEADLINE:
            interaction.late = True
            return error(404, 10062, "Unknown interaction")
        if interaction.callback_type is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        body = await read_json(request) or {}
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags", 0)) & EPHEMERAL)
        interaction.callback_type = kind
        resource: JSON = {"type": kind}
        if kind == 4:
            invalid = invalid_content(data)
            if invalid is not None:
                interaction.callback_type = None
                return invalid
            interaction.original = self._interaction_message(interaction, data, ephemeral)
            resource["message"] = self.message_payload(interaction.original)
        elif kind == 5:
            interaction.deferred_ephemeral = ephemeral
            interaction.original = self._interaction_message(interaction, {}, ephemeral, True)
        elif kind == 8:
            interaction.choices = list(data.get("choices", []))
        else:
            return error(400, 50035, "Invalid Form Body")
        response: JSON = {"interaction": {
            "id": interaction.id, "type": interaction.payload["type"],
            "response_message_id": interaction.original.id if interaction.original else None,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": ephemeral,
        }}
        if kind in (4, 5):
            response["resource"] = resource
        return json_response(response)

    def _webhook_target(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._interaction(request.match_info["token"])
        if interaction is None or request.match_info["app"] != self.application_id:
            return error(404, 10015, "Unknown Webhook")
        if interaction.callback_type is None:
            return error(400, 40060, "Unknown Webhook: the interaction was not answered")
        return interaction

    def _webhook_message(self, request: web.Request) -> FakeMessage | web.Response:
        """The interaction message a webhook route names, or the error Discord answers."""
        target = self._webhook_target(request)
        if isinstance(target, web.Response):
            return target
        message_id = request.match_info["message"]
        if message_id == "@original":
            found = target.original
        else:
            found = next((m for m in target.followups if m.id == message_id), None)
        if found is None or found.deleted:
            return error(404, 10008, "Unknown Message")
        return found

    async def _followup(self, request: web.Request) -> web.Response:
        target = self._webhook_target(request)
        if isinstance(target, web.Response):
            return target
        body = await read_json(request) or {}
        invalid = invalid_content(body)
        if invalid is not None:
            return invalid
        original = target.original
        if original is not None and original.loading and not original.deleted:
            # Discord: the first follow-up after a defer replaces the "thinking" message
            # and keeps the defer's visibility, whatever flags it asks for.
            self._edit(original, body)
            return json_response(self.message_payload(original))
        ephemeral = bool(int(body.get("flags", 0)) & EPHEMERAL)
        message = self._interaction_message(target, body, ephemeral)
        target.followups.append(message)
        return json_response(self.message_payload(message))

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        if isinstance(message, web.Response):
            return message
        return json_response(self.message_payload(message))

    async def _patch_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        if isinstance(message, web.Response):
            return message
        invalid = invalid_content(await read_json(request))
        if invalid is not None:
            return invalid
        self._edit(message, await read_json(request))
        return json_response(self.message_payload(message))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        if isinstance(message, web.Response):
            return message
        message.deleted = True
        return web.Response(status=204)
