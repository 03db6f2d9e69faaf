"""Delivering cabot's replies to Telegram within its flood limits.

Messages are posted as escaped HTML (plain text if Telegram refuses the markup) after the
chat's flood budget allows; a 429 is waited out when short and reported when long.
Streaming edits that are not due yet are held, the latest text of each message replacing
the one before, and delivered by a per-chat task as soon as the budget allows: the
streaming side never waits, and the final text of a reply always arrives. A chat the bot
was removed from is refused at once (one log line) until someone writes there again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lru import LRU
from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from adapters.telegram.convert import Target
from adapters.telegram.limits import ChatBudget, FloodLimits
from adapters.telegram.render import to_html
from bot.errors import AdapterError, ForbiddenError, MessageGoneError, PlatformRateLimitError
from bot.messages import IncomingMessage, OutgoingMessage, SentMessage

log = logging.getLogger(__name__)

MIN_WAIT = 0.001
"""Waits are at least this long, so rounding can never make a wait loop spin."""

MOVED_MEMORY = 256
"""Reposted replies (their text was held while someone deleted them) whose new id is kept."""
GONE_MEMORY = 4096
"""Chats the bot was removed from that are refused at once (a forgotten one costs one call)."""

Sleep = Callable[[float], Awaitable[None]]


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


class Outbox:
    """Sends, edits and typing actions for one bot, paced per chat.

    Args:
        limits: how fast to post.
        clock: monotonic seconds.
        sleep: waits that long (tests pass a fake clock's).
    """

    def __init__(
        self,
        limits: FloodLimits,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._limits = limits
        self._sleep = sleep
        self._budget = ChatBudget(limits, clock)
        self._bot: Bot | None = None
        self._closing = False
        self._gone: LRU[int, None] = LRU(GONE_MEMORY)
        self._pending: dict[int, dict[int, _PendingEdit]] = {}
        self._flushers: dict[int, asyncio.Task[None]] = {}
        # (chat, deleted reply) -> the reply posted in its place, for the edits still coming.
        self._moved: LRU[tuple[int, int], int] = LRU(MOVED_MEMORY)

    def open(self, bot: Bot) -> None:
        """Start delivering through ``bot``."""
        self._bot, self._closing = bot, False

    def reopen(self, chat_id: int) -> None:
        """Someone wrote in the chat, so the bot is (back) in it."""
        self._gone.pop(chat_id, None)

    async def flush(self) -> None:
        """Wait until every held edit has been delivered."""
        while self._flushers:
            await asyncio.gather(*list(self._flushers.values()), return_exceptions=True)

    async def close(self, seconds: float) -> None:
        """Refuse new messages, deliver held edits for up to ``seconds``, then stop."""
        self._closing = True
        try:
            if self._flushers:
                await asyncio.wait_for(self.flush(), seconds)
        except TimeoutError:
            log.warning("telegram: stopped before %d chats got the last text of a reply",
                        len(self._pending))
        finally:
            tasks = list(self._flushers.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flushers.clear()
            self._pending.clear()
            self._bot = None

    def _bot_for(self, chat_id: int) -> Bot:
        bot = self._bot
        if bot is None or self._closing:
            raise AdapterError("The Telegram adapter is not running.")
        if chat_id in self._gone:
            raise ForbiddenError(
                f"cabot can no longer post in Telegram chat {chat_id} (removed or blocked)."
            )
        return bot

    def mark_gone(self, chat_id: int, why: str) -> None:
        """The bot can no longer post in a chat: refuse at once until it is back."""
        if chat_id not in self._gone:
            self._gone[chat_id] = None
            log.info("telegram: cannot post in chat %s any more (%s); ignoring it until "
                     "someone writes there again", chat_id, why)
        self._pending.pop(chat_id, None)

    def _translate(self, error: TelegramError, chat_id: int, doing: str) -> AdapterError:
        text = error.message.lower()
        if isinstance(error, Forbidden) or "chat not found" in text:
            self.mark_gone(chat_id, error.message)
            return ForbiddenError(
                f"Telegram refused to let cabot {doing} in chat {chat_id}: {error.message}. "
                "Add the bot to the chat again (and let it post) to use it there."
            )
        if isinstance(error, ChatMigrated):
            self.mark_gone(chat_id, f"the group became supergroup {error.new_chat_id}")
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
            if delay > max(self._limits.max_retry_wait, 60.0):
                raise PlatformRateLimitError(
                    f"Telegram asked cabot to wait {delay:.0f} s before posting in this chat "
                    "again; the reply was not sent.", delay)
            await self._sleep(max(delay, MIN_WAIT))

    async def send(self, message: OutgoingMessage) -> SentMessage:
        """Post ``message`` as a reply in the chat (and topic) it answers."""
        self._bot_for(Target.of(message.in_reply_to).chat_id)
        return await self._send_now(message)

    async def _send_now(self, message: OutgoingMessage) -> SentMessage:
        target = Target.of(message.in_reply_to)
        while True:
            bot = self._bot
            if bot is None:
                raise AdapterError("The Telegram adapter is not running.")
            if target.chat_id in self._gone:
                raise ForbiddenError(
                    f"cabot can no longer post in Telegram chat {target.chat_id}.")
            await self._wait_for_send(target)
            self._budget.spend(target.chat_id, edit=False)
            try:
                posted = await self._send_text(bot, target, message.text)
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
        if seconds > self._limits.max_retry_wait:
            raise PlatformRateLimitError(
                f"Telegram asked cabot to wait {seconds:.0f} s before it can {doing} in this "
                f"chat again (it waits at most {self._limits.max_retry_wait:.0f} s).", seconds
            ) from None
        log.info("telegram: flood control in chat %s, waiting %.0f s", chat_id, seconds)
        return seconds

    async def _send_text(self, bot: Bot, target: Target, text: str) -> Message:
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
        bot = self._bot_for(chat_id)
        message_id = self._moved.get((chat_id, int(sent.message_id)), int(sent.message_id))
        # While held edits of this chat are being delivered, a direct edit could overtake
        # an older text of the same message: hold it too, so texts arrive in order.
        if (chat_id in self._flushers or self._pending.get(chat_id)
                or self._budget.edit_delay(chat_id, is_group) > 0):
            self._hold(chat_id, message_id, _PendingEdit(sent, text), is_group)
            return
        self._budget.spend(chat_id, edit=True)
        try:
            await self._edit_text(bot, chat_id, message_id, text)
        except RetryAfter as error:
            self._retry_later(chat_id, error, "edit a reply")
            self._hold(chat_id, message_id, _PendingEdit(sent, text), is_group)

    async def _edit_text(self, bot: Bot, chat_id: int, message_id: int, text: str) -> None:
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
        bot = self._bot
        if bot is None or chat_id in self._gone:
            return
        self._budget.spend(chat_id, edit=True)
        try:
            await self._edit_text(bot, chat_id, message_id, edit.text)
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
                sent = await self._send_now(OutgoingMessage(
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
        bot = self._bot_for(target.chat_id)
        try:
            await bot.send_chat_action(
                target.chat_id, ChatAction.TYPING, message_thread_id=target.thread_id
            )
        except RetryAfter as error:
            self._budget.block(target.chat_id, retry_seconds(error))
            raise PlatformRateLimitError(
                "Telegram asked cabot to slow down.", retry_seconds(error)) from None
        except TelegramError as error:
            raise self._translate(error, target.chat_id, "show typing") from None

