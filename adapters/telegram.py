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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    ChatMember,
    ChatMemberUpdated,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
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

from adapters.telegram_admins import AdminCache
from adapters.telegram_convert import (
    Target,
    command_for_other_bot,
    normalise_command,
    sender_of,
    strip_mentions,
    to_incoming,
)
from adapters.telegram_limits import ChatBudget, FloodLimits
from adapters.telegram_logging import guard_token
from adapters.telegram_render import to_html
from adapters.telegram_webhook import WebhookServer, derived_secret
from bot.adapter import Capabilities, MessageSink
from bot.commands import parse_command
from bot.errors import (
    AdapterError,
    ConfigError,
    ForbiddenError,
    MessageGoneError,
    PlatformRateLimitError,
)
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage
from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_MESSAGE_LENGTH = 4096
TYPING_INTERVAL = 4.5
"""A typing action shows for 5 s or until the bot posts; renew it a little earlier."""
POLL_TIMEOUT = dt.timedelta(seconds=10)
ALLOWED_UPDATES = ("message", "my_chat_member")
"""Edited messages are not even fetched: an edit never runs a command or a new reply."""
MIN_WAIT = 0.001
"""Waits are at least this long, so rounding can never make a wait loop spin."""
STOP_FLUSH_SECONDS = 5.0
"""How long stopping waits for edits that are not due yet."""

BOT_COMMANDS = (
    BotCommand("profile", "show | explain | list | layers | use <p> | set <layers> | reset"),
    BotCommand("forget", "Clear this chat's conversation memory"),
    BotCommand("answer", "always | addressed: when cabot answers here (admins)"),
    BotCommand("help", "What cabot can do and its commands"),
)

Sleep = Callable[[float], Awaitable[None]]
TelegramApp = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


def retry_seconds(error: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds."""
    # The public ``retry_after`` warns (PTB 22.2 deprecation) unless PTB_TIMEDELTA is set;
    # the timedelta it is built from is the same value either way.
    value = getattr(error, "_retry_after", None)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    public = error.retry_after
    return public.total_seconds() if isinstance(public, dt.timedelta) else float(public)


def _is_entity_error(error: BadRequest) -> bool:
    return "can't parse entities" in error.message.lower()


def _is_not_modified(error: BadRequest) -> bool:
    return "message is not modified" in error.message.lower()


@dataclass
class _PendingEdit:
    sent: SentMessage
    text: str


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
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if settings.telegram_token is None:
            raise ConfigError(
                "CABOT_TELEGRAM_TOKEN is not set; create a bot with @BotFather and put its "
                "token there (see docs/telegram.md)."
            )
        self._settings = settings
        self._token = settings.telegram_token
        self._clock = clock
        self._sleep = sleep
        self.limits = FloodLimits(
            edit_interval=settings.telegram_edit_interval,
            group_per_minute=settings.telegram_group_rate,
            max_retry_wait=settings.telegram_max_retry_wait,
        )
        self.capabilities = Capabilities(
            max_message_length=MAX_MESSAGE_LENGTH,
            can_edit=True,
            edit_interval=settings.telegram_edit_interval,
            can_type=True,
            typing_interval=TYPING_INTERVAL,
        )
        self._budget = ChatBudget(self.limits, clock)
        self._application: TelegramApp | None = None
        self._admins: AdminCache | None = None
        self._webhook: WebhookServer | None = None
        self._sink: MessageSink | None = None
        self._me: User | None = None
        self._unguard: Callable[[], None] | None = None
        self._stopping = False
        self._gone: set[int] = set()
        self._pending: dict[int, dict[int, _PendingEdit]] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}
        self._moved: dict[tuple[int, int], int] = {}
        self.last_update_id = 0
        """The latest update handed to the core (tests wait on it)."""

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, sink: MessageSink) -> None:
        """Connect to the Bot API, register the commands and start receiving updates."""
        token = self._token.get_secret_value()
        self._unguard = guard_token(token)  # before the bot exists: it logs its URL
        webhook_url = self._settings.telegram_webhook_url
        builder = ApplicationBuilder().token(token).concurrent_updates(True)
        if self._settings.telegram_base_url:
            builder = builder.base_url(self._settings.telegram_base_url)
        if webhook_url:
            builder = builder.updater(None)
        application = builder.build()
        application.add_handler(
            MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message)
        )
        application.add_handler(
            ChatMemberHandler(self._on_membership, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        application.add_handler(TypeHandler(Update, self._on_any), group=1)
        application.add_error_handler(self._on_error)
        self._application = application
        self._sink = sink
        self._stopping = False
        try:
            await application.initialize()
            self._me = application.bot.bot
            self._admins = AdminCache(
                application.bot.get_chat_administrators,
                application.bot.get_chat_member,
                self._settings.telegram_admin_cache,
                self._clock,
            )
            await self._register_commands()
            await application.start()
            if webhook_url:
                await self._start_webhook(webhook_url)
            else:
                assert application.updater is not None
                await application.updater.start_polling(
                    timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES)
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
            await self._application.bot.set_my_commands(list(BOT_COMMANDS))
        except TelegramError as error:
            # The menu is a convenience; commands work without it.
            log.warning("telegram: could not register the command menu: %s", error)

    async def _start_webhook(self, url: str) -> None:
        assert self._application is not None
        settings = self._settings
        secret = (settings.telegram_webhook_secret.get_secret_value()
                  if settings.telegram_webhook_secret is not None
                  else derived_secret(self._token.get_secret_value()))
        self._webhook = WebhookServer(
            self._application.bot,
            self._application.update_queue,
            urlparse(url).path,
            settings.telegram_webhook_listen,
            settings.telegram_webhook_port,
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
        self._stopping = True
        self._sink = None
        try:
            await self._teardown()
        finally:
            self._stopping = False

    async def _teardown(self) -> None:
        application = self._application
        try:
            if self._webhook is not None:
                webhook, self._webhook = self._webhook, None
                await webhook.stop()
            if application is not None:
                if application.updater is not None and application.updater.running:
                    await application.updater.stop()
                if application.running:
                    await application.stop()
                await self._flush_all(STOP_FLUSH_SECONDS)
                await application.shutdown()
        finally:
            self._application = None
            for task in self._flushers.values():
                task.cancel()
            await asyncio.gather(*self._flushers.values(), return_exceptions=True)
            self._flushers.clear()
            self._pending.clear()
            if self._admins is not None:
                await self._admins.close()
            if self._unguard is not None:
                unguard, self._unguard = self._unguard, None
                unguard()

    async def flush(self) -> None:
        """Wait until every edit held back by the flood budget has been delivered."""
        while self._flushers:
            await asyncio.gather(*list(self._flushers.values()), return_exceptions=True)

    async def _flush_all(self, seconds: float) -> None:
        if not self._flushers:
            return
        try:
            await asyncio.wait_for(self.flush(), seconds)
        except TimeoutError:
            log.warning("telegram: stopped before %d chats got the last text of a reply",
                        len(self._pending))

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

    async def _convert(self, message: Message) -> IncomingMessage | None:
        me = self._me
        if me is None or message.text is None or message.is_automatic_forward:
            return None  # posts a linked channel forwards into its group are not for cabot
        sender = sender_of(message)
        if sender.is_bot:
            return None
        self._gone.discard(message.chat.id)  # someone wrote there: the bot is back in
        if command_for_other_bot(message.text, me):
            return None
        text, mentioned = strip_mentions(message, me)
        text = normalise_command(text)
        moderator = False
        if parse_command(text) is not None:
            # Only commands need to know who moderates; other messages cost no lookup.
            assert self._admins is not None
            moderator = await self._admins.moderates(message)
        return to_incoming(message, me, text, mentions_bot=mentioned, moderator=moderator)

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
            self._mark_gone(chat_id, "the bot was removed from the chat")
        else:
            self._gone.discard(chat_id)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: failed to handle an update: %s", context.error,
                  exc_info=context.error)

    # -- outgoing ------------------------------------------------------------------

    def _bot_for(self, chat_id: int) -> TelegramApp:
        application = self._application
        if application is None or self._stopping:
            raise AdapterError("The Telegram adapter is not running.")
        if chat_id in self._gone:
            raise ForbiddenError(
                f"cabot can no longer post in Telegram chat {chat_id} (removed or blocked)."
            )
        return application

    def _mark_gone(self, chat_id: int, why: str) -> None:
        if chat_id not in self._gone:
            self._gone.add(chat_id)
            log.info("telegram: cannot post in chat %s any more (%s); ignoring it until "
                        "someone writes there again", chat_id, why)
        self._pending.pop(chat_id, None)

    def _translate(self, error: TelegramError, chat_id: int, doing: str) -> AdapterError:
        text = error.message.lower()
        if isinstance(error, Forbidden) or "chat not found" in text:
            self._mark_gone(chat_id, error.message)
            return ForbiddenError(
                f"Telegram refused to let cabot {doing} in chat {chat_id}: {error.message}. "
                "Add the bot to the chat again (and let it post) to use it there."
            )
        if isinstance(error, ChatMigrated):
            self._mark_gone(chat_id, f"the group became supergroup {error.new_chat_id}")
            return ForbiddenError(
                f"Telegram group {chat_id} was upgraded to supergroup {error.new_chat_id}; "
                "its profile settings stay with the old id."
            )
        if isinstance(error, BadRequest) and (
            "message to edit not found" in text or "message can't be edited" in text
        ):
            return MessageGoneError(f"The reply to edit in chat {chat_id} was deleted.")
        if isinstance(error, BadRequest) and (
            "thread not found" in text or "topic_closed" in text or "topic closed" in text
        ):
            return ForbiddenError(
                f"cabot cannot {doing} in that topic of chat {chat_id}: {error.message}."
            )
        return AdapterError(f"Telegram refused to {doing} in chat {chat_id}: {error.message}")

    async def _wait_for_send(self, target: Target) -> None:
        while (delay := self._budget.send_delay(target.chat_id, target.is_group)) > 0:
            if delay > max(self.limits.max_retry_wait, 60.0):
                raise PlatformRateLimitError(
                    f"Telegram asked cabot to wait {delay:.0f} s before posting in this chat "
                    "again; the reply was not sent.", delay)
            await self._sleep(max(delay, MIN_WAIT))

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post ``message`` as a reply in the chat (and topic) it answers."""
        target = Target.of(message.in_reply_to)
        while True:
            application = self._bot_for(target.chat_id)
            await self._wait_for_send(target)
            self._budget.spend(target.chat_id, edit=False)
            try:
                posted = await self._send_text(application, target, message.text)
            except RetryAfter as error:
                self._retry_later(target.chat_id, error, "post a reply")
                continue
            except TelegramError as error:
                raise self._translate(error, target.chat_id, "post a reply") from None
            return SentMessage(
                message_id=str(posted.message_id),
                in_reply_to=message.in_reply_to,
                extras={"chat_id": target.chat_id, "is_group": target.is_group},
            )

    def _retry_later(self, chat_id: int, error: RetryAfter, doing: str) -> float:
        """Record a flood wait; raise if it is longer than cabot waits."""
        seconds = retry_seconds(error)
        self._budget.block(chat_id, seconds)
        if seconds > self.limits.max_retry_wait:
            raise PlatformRateLimitError(
                f"Telegram asked cabot to wait {seconds:.0f} s before it can {doing} in this "
                f"chat again (it waits at most {self.limits.max_retry_wait:.0f} s).", seconds
            ) from None
        log.info("telegram: flood control in chat %s, waiting %.0f s", chat_id, seconds)
        return seconds

    async def _send_text(self, application: TelegramApp, target: Target, text: str) -> Message:
        bot = application.bot
        # Quoting the question helps in a busy group; in a private chat it is noise.
        reply = (ReplyParameters(target.message_id, allow_sending_without_reply=True)
                 if target.is_group else None)
        preview = LinkPreviewOptions(is_disabled=True)
        rendered = to_html(text)
        if rendered.strip():
            try:
                return await bot.send_message(
                    target.chat_id, rendered, parse_mode=ParseMode.HTML,
                    message_thread_id=target.thread_id, reply_parameters=reply,
                    link_preview_options=preview,
                )
            except BadRequest as error:
                if not _is_entity_error(error):
                    raise
                log.info("telegram: chat %s refused a reply's HTML (%s); sending plain text",
                         target.chat_id, error)
        return await bot.send_message(
            target.chat_id, text, message_thread_id=target.thread_id,
            reply_parameters=reply, link_preview_options=preview,
        )

    async def edit(self, sent: SentMessage, text: str) -> None:
        """Show ``text`` in a posted message now, or as soon as the chat's budget allows."""
        chat_id = int(sent.extras["chat_id"])
        is_group = bool(sent.extras.get("is_group"))
        application = self._bot_for(chat_id)
        message_id = self._moved.get((chat_id, int(sent.message_id)), int(sent.message_id))
        if self._pending.get(chat_id) or self._budget.edit_delay(chat_id, is_group) > 0:
            self._hold(chat_id, message_id, _PendingEdit(sent, text), is_group)
            return
        self._budget.spend(chat_id, edit=True)
        try:
            await self._edit_text(application, chat_id, message_id, text)
        except RetryAfter as error:
            self._retry_later(chat_id, error, "edit a reply")
            self._hold(chat_id, message_id, _PendingEdit(sent, text), is_group)

    async def _edit_text(
        self, application: TelegramApp, chat_id: int, message_id: int, text: str
    ) -> None:
        bot = application.bot
        preview = LinkPreviewOptions(is_disabled=True)
        try:
            rendered = to_html(text)
            try:
                if not rendered.strip():
                    raise BadRequest("Can't parse entities: nothing visible")
                await bot.edit_message_text(rendered, chat_id, message_id,
                                            parse_mode=ParseMode.HTML,
                                            link_preview_options=preview)
            except BadRequest as error:
                if not _is_entity_error(error):
                    raise
                await bot.edit_message_text(text, chat_id, message_id,
                                            link_preview_options=preview)
        except BadRequest as error:
            if _is_not_modified(error):
                return  # the same text again: nothing to show
            raise self._translate(error, chat_id, "edit a reply") from None
        except RetryAfter:
            raise
        except TelegramError as error:
            raise self._translate(error, chat_id, "edit a reply") from None

    def _hold(self, chat_id: int, message_id: int, edit: _PendingEdit, is_group: bool) -> None:
        # Only the latest text of each message matters; an older held text is replaced.
        self._pending.setdefault(chat_id, {})[message_id] = edit
        if chat_id not in self._flushers:
            task = asyncio.create_task(self._deliver_held(chat_id, is_group))
            self._flushers[chat_id] = task

    async def _deliver_held(self, chat_id: int, is_group: bool) -> None:
        try:
            while pending := self._pending.get(chat_id):
                delay = self._budget.edit_delay(chat_id, is_group)
                if delay > 0:
                    await self._sleep(max(delay, MIN_WAIT))
                    continue
                message_id = next(iter(pending))
                edit = pending.pop(message_id)
                await self._deliver_one(chat_id, message_id, edit)
        finally:
            if not self._pending.get(chat_id):
                self._pending.pop(chat_id, None)
            self._flushers.pop(chat_id, None)

    async def _deliver_one(self, chat_id: int, message_id: int, edit: _PendingEdit) -> None:
        application = self._application
        if application is None or chat_id in self._gone:
            return
        self._budget.spend(chat_id, edit=True)
        try:
            await self._edit_text(application, chat_id, message_id, edit.text)
        except RetryAfter as error:
            try:
                self._retry_later(chat_id, error, "edit a reply")
            except PlatformRateLimitError as too_long:
                log.warning("telegram: dropped the latest text of a reply: %s", too_long)
                return
            self._pending.setdefault(chat_id, {}).setdefault(message_id, edit)
        except MessageGoneError:
            # The reply was deleted while its text was held back: post the text anew.
            try:
                sent = await self.send(OutgoingMessage(
                    in_reply_to=edit.sent.in_reply_to, text=edit.text))
            except AdapterError as error:
                log.warning("telegram: could not repost a deleted reply: %s", error)
                return
            self._moved[(chat_id, int(edit.sent.message_id))] = int(sent.message_id)
        except AdapterError as error:
            log.warning("telegram: could not show the latest text of a reply: %s", error)

    async def show_typing(self, message: IncomingMessage) -> None:
        """Show "typing…" in the chat (and topic) of ``message``."""
        target = Target.of(message)
        application = self._bot_for(target.chat_id)
        try:
            await application.bot.send_chat_action(
                target.chat_id, ChatAction.TYPING, message_thread_id=target.thread_id
            )
        except RetryAfter as error:
            self._budget.block(target.chat_id, retry_seconds(error))
            raise PlatformRateLimitError(
                "Telegram asked cabot to slow down.", retry_seconds(error)) from None
        except TelegramError as error:
            raise self._translate(error, target.chat_id, "show typing") from None

