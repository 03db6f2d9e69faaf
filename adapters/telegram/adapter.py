"""cabot on Telegram: private chats, groups and forum topics through python-telegram-bot.

The application runs with its manual lifecycle (``initialize``, ``start``,
``updater.start_polling`` — or a webhook — then ``stop`` and ``shutdown``) in the shared
event loop, with updates processed concurrently. Replies are sent as escaped HTML (plain
text if Telegram refuses the markup), streamed by edits paced per chat within Telegram's
flood limits; an edit that is not due yet is kept and delivered when it is, so the final
text of a reply always arrives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from lru import LRU
from telegram import ChatMember, ChatMemberUpdated, Message, Update, User
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ChatMemberHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    TypeHandler,
    filters,
)

from adapters.telegram.admins import AdminCache
from adapters.telegram.convert import (
    PLATFORM,
    command_for_other_bot,
    normalise_command,
    sender_of,
    strip_mentions,
    to_incoming,
)
from adapters.telegram.documents import document_of, file_url_for, read_document
from adapters.telegram.limits import FloodLimits, utf16_length
from adapters.telegram.menu import bot_commands
from adapters.telegram.outbox import Outbox, Sleep
from adapters.telegram.polling import (
    UPDATER_LOGGER,
    InvalidTokenLogFilter,
    PollWatch,
    WatchedPollRequest,
)
from adapters.telegram.private import PrivateReplies
from adapters.telegram.redaction import guard_token
from adapters.telegram.settings import TelegramSettings
from adapters.telegram.webhook import WebhookServer, derived_secret
from bot.adapter import Capabilities, MessageSink
from bot.commands import Registry, build_registry
from bot.errors import AdapterError, ConfigError
from bot.messages import Attachment, CommunityMoved, IncomingMessage, OutgoingMessage, SentMessage

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096
MIGRATED_CHATS = 1024
"""Group upgrades remembered, so the two service messages of one upgrade move it once."""
TYPING_INTERVAL = 4.5
"""A typing action shows for 5 s or until the bot posts; renew it a little earlier."""
POLL_TIMEOUT = dt.timedelta(seconds=10)
ALLOWED_UPDATES = ("message", "my_chat_member")
"""Edited messages are not even fetched: an edit never runs a command or a new reply."""
STOP_FLUSH_SECONDS = 5.0
"""How long stopping waits for edits that are not due yet."""


TelegramApp = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


class TelegramAdapter:
    """The Telegram platform for cabot.

    Args:
        settings: the configuration (``CABOT_TELEGRAM_*``).
        clock: monotonic seconds, for flood budgets and the administrator cache.
        sleep: waits that long; tests pass a fake clock's sleep so nothing waits on wall time.
    """

    name = "telegram"

    def __init__(
        self,
        settings: TelegramSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        registry: Registry | None = None,
    ) -> None:
        if settings.token is None:
            raise ConfigError(
                "CABOT_TELEGRAM_TOKEN is not set; create a bot with @BotFather and put its "
                "token there (see docs/telegram.md)."
            )
        self._settings = settings
        self._token = settings.token
        self._registry = registry if registry is not None else build_registry()
        self._migrated: LRU[tuple[int, int], asyncio.Future[None]] = LRU(
            MIGRATED_CHATS
        )
        self._clock = clock
        self._sleep = sleep
        self.limits = FloodLimits(
            edit_interval=settings.edit_interval,
            group_per_minute=settings.group_rate,
            max_retry_wait=settings.max_retry_wait,
        )
        self.capabilities = Capabilities(
            max_message_length=MAX_MESSAGE_LENGTH,
            can_edit=True,
            edit_interval=settings.edit_interval,
            can_type=True,
            typing_interval=TYPING_INTERVAL,
            measure=utf16_length,  # Telegram's 4,096 counts UTF-16 code units
        )
        self._outbox = Outbox(self.limits, clock, sleep)
        self._private = PrivateReplies(self._outbox)
        self._application: TelegramApp | None = None
        self._admins: AdminCache | None = None
        self._webhook: WebhookServer | None = None
        self._sink: MessageSink | None = None
        self._me: User | None = None
        self._unguard: Callable[[], None] | None = None
        self._polls = PollWatch(clock)
        self._token_filter = InvalidTokenLogFilter(self._polls)
        self.last_update_id = 0
        """The latest update handed to the core (tests wait on it)."""

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, sink: MessageSink) -> None:
        """Connect to the Bot API, register the commands and start receiving updates."""
        token = self._token.get_secret_value()
        self._unguard = guard_token(token)  # before the bot exists: it logs its URL
        logging.getLogger(UPDATER_LOGGER).addFilter(self._token_filter)
        webhook_url = self._settings.webhook_url
        builder = ApplicationBuilder().token(token).concurrent_updates(True)
        if self._settings.base_url:
            builder = builder.base_url(self._settings.base_url)
        file_url = file_url_for(self._settings)
        if file_url:
            builder = builder.base_file_url(file_url)
        if webhook_url:
            builder = builder.updater(None)
        else:
            builder = builder.get_updates_request(WatchedPollRequest(self._polls))
        application = builder.build()
        application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message)
        )
        application.add_handler(  # a file sent with a command as its caption
            MessageHandler(filters.UpdateType.MESSAGE & filters.Document.ALL & filters.CAPTION,
                           self._on_message)
        )
        application.add_handler(
            MessageHandler(filters.StatusUpdate.MIGRATE, self._on_migrate)
        )
        application.add_handler(
            ChatMemberHandler(self._on_membership, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        application.add_handler(TypeHandler(Update, self._on_any), group=1)
        application.add_error_handler(self._on_error)
        self._application = application
        self._sink = sink
        try:
            await application.initialize()
            self._me = application.bot.bot
            self._outbox.open(application.bot)
            self._admins = AdminCache(
                application.bot.get_chat_administrators,
                application.bot.get_chat_member,
                self._settings.admin_cache,
                self._clock,
            )
            await self._register_commands()
            await application.start()
            if webhook_url:
                await self._start_webhook(webhook_url)
            else:
                assert application.updater is not None
                await application.updater.start_polling(
                    timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES),
                    poll_interval=self._settings.poll_interval,
                    # Instead of a traceback per failed poll: one line per outage.
                    error_callback=self._polls.failed,
                )
        except InvalidToken:
            await self._teardown()
            raise ConfigError(
                "Telegram rejected CABOT_TELEGRAM_TOKEN; copy the token @BotFather gave you "
                "(it looks like 123456:ABC...)."
            ) from None
        except (TelegramError, OSError) as error:
            await self._teardown()
            raise AdapterError(
                f"Cannot start the Telegram bot ({error}); check the network, or "
                "CABOT_TELEGRAM_BASE_URL and CABOT_TELEGRAM_WEBHOOK_* if you set them."
            ) from None
        except BaseException:
            await self._teardown()
            raise
        log.info("telegram: running as @%s (%s)", self._me.username,
                 "webhook" if webhook_url else "long polling")

    async def _register_commands(self) -> None:
        assert self._application is not None
        try:
            await self._application.bot.set_my_commands(bot_commands(self._registry))
        except TelegramError as error:
            # The menu is a convenience; commands work without it.
            log.warning("telegram: could not register the command menu: %s", error)

    async def _start_webhook(self, url: str) -> None:
        assert self._application is not None
        settings = self._settings
        secret = (settings.webhook_secret.get_secret_value()
                  if settings.webhook_secret is not None
                  else derived_secret(self._token.get_secret_value()))
        self._webhook = WebhookServer(
            self._application.bot,
            self._application.update_queue,
            urlparse(url).path,
            settings.webhook_listen,
            settings.webhook_port,
            secret,
        )
        await self._webhook.start()
        await self._application.bot.set_webhook(
            url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
        )

    @property
    def webhook_port(self) -> int | None:
        """The port the webhook server listens on (None when polling)."""
        return self._webhook.port if self._webhook is not None else None

    async def stop(self) -> None:
        """Stop receiving, deliver edits still due (briefly), then disconnect."""
        self._sink = None
        await self._teardown()

    async def _teardown(self) -> None:
        application = self._application
        try:
            if self._webhook is not None:
                webhook, self._webhook = self._webhook, None
                await webhook.stop()
            if application is not None:
                if application.updater is not None and application.updater.running:
                    try:
                        await application.updater.stop()
                    except InvalidToken:
                        pass  # polling ended on a rejected token (said: PollWatch.rejected)
                if application.running:
                    await application.stop()
                await self._outbox.close(STOP_FLUSH_SECONDS)
                await application.shutdown()
        finally:
            self._application = None
            await self._outbox.close(0)
            if self._admins is not None:
                await self._admins.close()
            if self._unguard is not None:
                unguard, self._unguard = self._unguard, None
                unguard()
            logging.getLogger(UPDATER_LOGGER).removeFilter(self._token_filter)

    async def flush(self) -> None:
        """Wait until every edit held back by the flood budget has been delivered."""
        await self._outbox.flush()

    # -- incoming ------------------------------------------------------------------

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            message = update.message
            if message is not None:
                incoming = await self._convert(message)
                sink = self._sink
                if incoming is not None and sink is not None:
                    await sink(incoming)
        finally:
            self.last_update_id = max(self.last_update_id, update.update_id)

    async def _on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: its settings and memory follow the new chat id."""
        message = update.message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            old, new = message.chat.id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id is not None:
            old, new = message.migrate_from_chat_id, message.chat.id
        else:
            return
        await self.community_moved(old, new)

    async def community_moved(self, old: int, new: int) -> None:
        """Tell the core that chat ``old`` is now ``new``.

        Both service messages of an upgrade come, possibly at once: the second waits for
        the move the first started, so nothing in the new chat is answered before it.
        """
        known = self._migrated.get((old, new))
        if known is None:
            known = asyncio.ensure_future(self._move(old, new))
            self._migrated[(old, new)] = known
        await asyncio.shield(known)

    async def _move(self, old: int, new: int) -> None:
        self._outbox.reopen(new)
        sink = self._sink
        if sink is not None:
            await sink(CommunityMoved(platform=PLATFORM, old=str(old), new=str(new),
                                      reason="the group became a supergroup"))

    async def _convert(self, message: Message) -> IncomingMessage | None:
        me = self._me
        written = message.text if message.text is not None else message.caption
        if me is None or written is None or message.is_automatic_forward:
            return None  # posts a linked channel forwards into its group are not for cabot
        sender = sender_of(message)
        if sender.is_bot:
            return None
        self._outbox.reopen(message.chat.id)  # someone wrote there: the bot is back in
        if command_for_other_bot(written, me):
            return None
        text, mentioned = strip_mentions(message, me)
        text = normalise_command(text)
        moderator = False
        files: tuple[Attachment, ...] = ()
        if self._registry.is_command(text):
            # Only commands need to know who moderates; other messages cost no lookup.
            assert self._admins is not None
            moderator = await self._admins.moderates(message)
            document = document_of(message)
            if document is not None and self._application is not None:
                files = (await read_document(self._application.bot, document),)
        incoming = to_incoming(message, me, text, mentions_bot=mentioned, moderator=moderator)
        return incoming.model_copy(update={"attachments": files}) if files else incoming

    async def _on_any(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Runs after the other handlers, for every update, ignored ones included.
        self.last_update_id = max(self.last_update_id, update.update_id)

    async def _on_membership(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change: ChatMemberUpdated | None = update.my_chat_member
        if change is None:
            return
        chat_id = change.chat.id
        if self._admins is not None:
            self._admins.forget(chat_id)
        if change.new_chat_member.status in (ChatMember.LEFT, ChatMember.BANNED):
            self._outbox.mark_gone(chat_id, "the bot was removed from the chat")
        else:
            self._outbox.reopen(chat_id)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: failed to handle an update: %s", context.error,
                  exc_info=context.error)

    # -- outgoing ------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post ``message`` as a reply in the chat (and topic) it answers; a private one
        (a preview) in the asker's private chat with the bot, when the bot may write there."""
        if message.private:
            sent = await self._private.send(message)
            if sent is not None:
                return sent
        return await self._outbox.send(message)

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Show ``text`` in a posted message now, or as soon as the chat's budget allows."""
        await self._outbox.edit(sent, text)

    async def show_typing(self, message: IncomingMessage) -> None:
        """Show "typing…" in the chat (and topic) of ``message``."""
        await self._outbox.show_typing(message)
