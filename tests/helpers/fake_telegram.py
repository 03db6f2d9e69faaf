"""A fake Telegram Bot API server on loopback, for the real python-telegram-bot client.

It speaks the wire format: ``POST /bot<TOKEN>/<method>``, form-encoded parameters with
non-string values JSON-encoded, answers ``{"ok": true, "result": ...}`` or Telegram's
errors. It rejects what Telegram rejects — text over 4,096 characters after entity
parsing, malformed HTML ("Bad Request: can't parse entities: ..."), edits that change
nothing, edits of deleted messages, chats the bot was removed from — and answers floods
(20 messages a minute per group, edits included) with 429 and ``parameters.retry_after``.
Everything the bot does is recorded, so tests can assert what users see.

Time comes from ``clock``; pass a ``tests.helpers.clock.SkippingClock`` (and its ``sleep``
to the adapter) so flood waits take no wall time.

``break_polling`` makes the next getUpdates calls fail as an outage in front of the Bot API
does — 502 Bad Gateway from its proxy, or the connection closed with no answer — the long
poll waiting at that moment included; updates posted meanwhile wait for the bot, as
Telegram keeps them until they are fetched.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web

JSON = dict[str, Any]
MAX_TEXT = 4096
STRING_PARAMS = frozenset({
    "text", "parse_mode", "action", "url", "secret_token", "caption", "description",
    "short_description", "name", "language_code", "ip_address",
})
SUPPORTED_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                   "username": "GroupAnonymousBot"}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel",
               "username": "Channel_Bot"}

TOKEN = "5550001234:AAH-fake-telegram-token_for-tests-only0"
"""A bot token in Telegram's format, for tests (the bot's id is the part before the colon)."""
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
"""What the proxy in front of the Bot API answers while the API behind it is down."""
POLL_FAULTS = ("502", "drop", "401")
GROUP = -1001234567890
"""A supergroup's chat id, as tests add it."""
FORUM = -1009876543210
"""A forum supergroup's chat id, as tests add it."""


class PollFault(Exception):
    """A getUpdates call that fails the way ``FakeTelegram.break_polling`` asked."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None,
                 migrate_to: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to = migrate_to

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        parameters: JSON = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to
        if parameters:
            body["parameters"] = parameters
        return body


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: the visible text and its entities, or ``ApiError``."""

    def fail(reason: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {reason}")

    def byte_offset(index: int) -> int:
        return len(source[:index].encode("utf-8"))

    text: list[str] = []
    length = 0  # visible text so far, in UTF-16 code units
    stack: list[tuple[str, int, JSON]] = []
    entities: list[JSON] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            match = re.match(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);", source[i:])
            decoded = "&"
            if match:
                name = match.group(1)
                if name.startswith("#x"):
                    decoded = chr(int(name[2:], 16))
                elif name.startswith("#"):
                    decoded = chr(int(name[1:]))
                elif name in NAMED_ENTITIES:
                    decoded = NAMED_ENTITIES[name]
                else:
                    raise fail(f'Unsupported HTML entity "&{name};" at byte offset '
                               f"{byte_offset(i)}")
                i += match.end()
            else:
                i += 1
            text.append(decoded)
            length += utf16_len(decoded)
            continue
        if char != "<":
            text.append(char)
            length += utf16_len(char)
            i += 1
            continue
        end = source.find(">", i)
        if end == -1:
            raise fail(f"Unclosed start tag at byte offset {byte_offset(i)}")
        inside = source[i + 1 : end]
        if inside.startswith("/"):
            name = inside[1:].strip().lower()
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {byte_offset(i)}")
            open_name, start, opened = stack.pop()
            if name != open_name:
                raise fail(f'Unmatched end tag at byte offset {byte_offset(i)}, expected '
                           f'"</{open_name}>", found "</{name}>"')
            kind = SUPPORTED_TAGS[open_name]
            if kind == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> is one pre entity with a language.
                if opened.get("language"):
                    stack[-1][2]["language"] = opened["language"]
            elif length > start:
                entity: JSON = {"type": kind, "offset": start, "length": length - start}
                entity.update(opened)
                if kind == "code":
                    entity.pop("language", None)
                entities.append(entity)
            i = end + 1
            continue
        match = re.match(r"([a-zA-Z][a-zA-Z0-9-]*)(.*)$", inside, re.S)
        if not match or match.group(1).lower() not in SUPPORTED_TAGS:
            name = match.group(1) if match else inside.split(" ", 1)[0]
            raise fail(f'Unsupported start tag "{name}" at byte offset {byte_offset(i)}')
        name, rest = match.group(1).lower(), match.group(2)
        attrs: JSON = {}
        for found in re.finditer(r'([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|\'([^\']*)\')', rest):
            key, value = found.group(1).lower(), found.group(2) or found.group(3) or ""
            if name == "a" and key == "href":
                attrs["url"] = value
            elif name == "code" and key == "class" and value.startswith("language-"):
                attrs["language"] = value[len("language-"):]
            elif name == "span" and key == "class" and value != "tg-spoiler":
                raise fail(f'Unsupported start tag "span" at byte offset {byte_offset(i)}')
        stack.append((name, length, attrs))
        i = end + 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(text), entities


def _strip_visible(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims surrounding whitespace from a message (shifting entity offsets)."""
    lead = len(text) - len(text.lstrip())
    shift = utf16_len(text[:lead])
    stripped = text.strip()
    total = utf16_len(stripped)
    kept = []
    for entity in entities:
        offset = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > offset:
            kept.append({**entity, "offset": offset, "length": end - offset})
    return stripped, kept


def auto_entities(text: str) -> list[JSON]:
    """The entities Telegram's clients attach to a typed message: commands and @mentions."""
    entities = []
    command = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?", text)
    if command:
        entities.append({"type": "bot_command", "offset": 0,
                         "length": utf16_len(command.group(0))})
    for mention in re.finditer(r"(?<![\w/@])@[A-Za-z0-9_]{4,32}", text):
        entities.append({"type": "mention", "offset": utf16_len(text[: mention.start()]),
                         "length": utf16_len(mention.group(0))})
    return entities


@dataclass
class ApiCall:
    """One request the bot made, and how it was answered."""

    method: str
    params: JSON
    at: float
    ok: bool = True
    error_code: int | None = None
    description: str | None = None


@dataclass
class ChatMessage:
    """A message in a chat, as its readers see it."""

    chat_id: int
    message_id: int
    from_bot: bool
    text: str
    entities: list[JSON]
    thread_id: int | None = None
    reply_to: int | None = None
    sent_at: float = 0.0
    deleted: bool = False
    versions: list[str] = field(default_factory=list)
    """Every text it showed, first to last (edits append)."""
    edit_times: list[float] = field(default_factory=list)
    raw: JSON = field(default_factory=dict)

    def entity_types(self) -> list[str]:
        return [entity["type"] for entity in self.entities]


@dataclass
class FloodRules:
    """How much the fake lets through before answering 429 (sends and edits count)."""

    group_per_minute: int = 20
    private_per_second: int = 5
    global_per_second: int = 30


class FakeTelegram:
    """The fake Bot API server. ``await start()``, then ``base_url`` for python-telegram-bot.

    Args:
        token: the only token it accepts.
        clock: monotonic seconds for flood control and records.
        username: the bot's username.
    """

    def __init__(
        self,
        token: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        username: str = "cabot_test_bot",
        flood: FloodRules | None = None,
    ) -> None:
        self.token = token
        self.clock = clock
        self.flood = flood if flood is not None else FloodRules()
        self.me: JSON = {"id": int(token.split(":", 1)[0]), "is_bot": True,
                         "first_name": "cabot", "username": username,
                         "can_join_groups": True, "can_read_all_group_messages": False,
                         "supports_inline_queries": False}
        self.chats: dict[int, JSON] = {}
        self.users: dict[int, JSON] = {}
        self.owners: dict[int, int] = {}
        self.admins: dict[int, set[int]] = {}
        self.kicked: set[int] = set()
        self.migrated: dict[int, int] = {}
        """Basic groups upgraded to a supergroup: old id to new id."""
        self.messages: dict[tuple[int, int], ChatMessage] = {}
        self.calls: list[ApiCall] = []
        self.commands: list[JSON] = []
        self.webhook: JSON | None = None
        self.files: dict[str, tuple[str, bytes]] = {}
        """Uploaded files: file_id to (file_path, content), as getFile and downloads see them."""
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self.last_update_id = 0
        """The id of the latest update users produced."""
        self._allowed: list[str] = []
        self._injected: list[tuple[str, ApiError, int | None]] = []
        self._poll_faults: deque[str] = deque()
        self.failed_polls = 0
        """getUpdates calls failed on purpose (``break_polling``)."""
        self.unauthorized = 0
        """Calls refused for a wrong (or revoked) token."""
        self._posts: dict[int, deque[float]] = {}
        self._recent: deque[float] = deque()
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- server ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def start(self) -> None:
        # python-telegram-bot's httpx honours proxy variables; loopback must bypass them.
        for name in ("NO_PROXY", "no_proxy"):
            hosts = os.environ.get(name, "")
            if "127.0.0.1" not in hosts:
                os.environ[name] = ",".join(h for h in (hosts, "127.0.0.1", "localhost") if h)
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Wake pending long polls and shut the server down."""
        self._closing = True
        self._bump()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    def _bump(self) -> None:
        """Wake everyone waiting for a change."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_change(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def _handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        form = await request.post()
        params: JSON = {}
        for key, value in form.items():
            if not isinstance(value, str):
                continue
            if key in STRING_PARAMS:
                params[key] = value
            else:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    params[key] = value
        call = ApiCall(method, params, self.clock())
        if token != self.token:
            self.unauthorized += 1
            self._bump()
            return self._answer(call, ApiError(401, "Unauthorized"))
        if method != "getUpdates":
            self.calls.append(call)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return self._answer(call, ApiError(404, "Not Found"))
        try:
            self._inject(method, params)
            result = await handler(params)
        except ApiError as error:
            return self._answer(call, error)
        except PollFault as fault:
            return await self._fail_poll(request, fault.how)
        finally:
            if method != "getUpdates":
                self._bump()
        return web.json_response({"ok": True, "result": result})

    def _answer(self, call: ApiCall, error: ApiError) -> web.Response:
        call.ok, call.error_code, call.description = False, error.code, error.description
        return web.json_response(error.body(), status=error.code)

    async def _fail_poll(self, request: web.Request, how: str) -> web.Response:
        self.failed_polls += 1
        self._bump()
        if how == "401":
            self.unauthorized += 1
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        if how == "502":
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        transport = request.transport
        if transport is not None:
            transport.abort()  # no answer at all: the client sees the connection end
        raise web.HTTPInternalServerError  # never sent: the connection is gone

    def _inject(self, method: str, params: JSON) -> None:
        for index, (wanted, error, chat_id) in enumerate(self._injected):
            if wanted == method and (chat_id is None or params.get("chat_id") == chat_id):
                del self._injected[index]
                raise error

    # -- the world -----------------------------------------------------------------

    def add_user(self, user_id: int, first_name: str, username: str | None = None,
                 is_bot: bool = False) -> JSON:
        user: JSON = {"id": user_id, "is_bot": is_bot, "first_name": first_name}
        if username:
            user["username"] = username
        self.users[user_id] = user
        return user

    def add_private_chat(self, user: JSON) -> JSON:
        chat: JSON = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self.chats[chat["id"]] = chat
        return chat

    def add_group(self, chat_id: int, title: str, *, owner: JSON, admins: tuple[JSON, ...] = (),
                  forum: bool = False) -> JSON:
        chat: JSON = {"id": chat_id, "type": "supergroup", "title": title}
        if forum:
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        self.owners[chat_id] = owner["id"]
        self.admins[chat_id] = {admin["id"] for admin in admins}
        return chat

    def add_channel(self, chat_id: int, title: str) -> JSON:
        chat: JSON = {"id": chat_id, "type": "channel", "title": title}
        self.chats[chat_id] = chat
        return chat

    def add_basic_group(self, chat_id: int, title: str, *, owner: JSON,
                        admins: tuple[JSON, ...] = ()) -> JSON:
        """A basic group (the kind Telegram upgrades to a supergroup)."""
        chat = self.add_group(chat_id, title, owner=owner, admins=admins)
        chat["type"] = "group"
        return chat

    def upgrade_group(self, chat_id: int, new_id: int) -> JSON:
        """A basic group becomes a supergroup with a new id, as Telegram does it: a service
        message in each chat, and the old id refused with ``migrate_to_chat_id`` since."""
        old = self.chats[chat_id]
        new: JSON = {"id": new_id, "type": "supergroup", "title": old["title"]}
        self.chats[new_id] = new
        self.owners[new_id] = self.owners[chat_id]
        self.admins[new_id] = set(self.admins[chat_id])
        self.migrated[chat_id] = new_id
        owner = self.users[self.owners[chat_id]]
        self._push({"message": {"message_id": self._next_id(chat_id), "date": int(time.time()),
                                "chat": old, "from": owner, "migrate_to_chat_id": new_id}})
        return self._push({"message": {
            "message_id": self._next_id(new_id), "date": int(time.time()), "chat": new,
            "from": owner, "migrate_from_chat_id": chat_id}})

    def kick_bot(self, chat_id: int) -> None:
        """The bot is removed from the chat: posting there is forbidden from now on."""
        self.kicked.add(chat_id)

    def delete_message(self, chat_id: int, message_id: int) -> None:
        self.messages[(chat_id, message_id)].deleted = True

    def fail(self, method: str, code: int, description: str, *, retry_after: int | None = None,
             chat_id: int | None = None) -> None:
        """Answer the next ``method`` call (in ``chat_id``) with this error."""
        self._injected.append((method, ApiError(code, description, retry_after), chat_id))

    def break_polling(self, times: int, how: str = "502") -> None:
        """Fail the next ``times`` getUpdates calls (the one waiting now first): ``"502"``
        answers Bad Gateway, ``"drop"`` closes the connection with no answer, ``"401"``
        answers Unauthorized."""
        if how not in POLL_FAULTS:
            raise ValueError(f"how must be one of {POLL_FAULTS}")
        self._poll_faults.extend([how] * times)
        self._bump()

    def _take_poll_fault(self) -> None:
        if self._poll_faults:
            raise PollFault(self._poll_faults.popleft())

    def revoke_token(self) -> None:
        """The owner revoked the bot's token in @BotFather: every call with it is refused
        from now on, the long poll waiting now too."""
        self.token = f"{self.me['id']}:revoked"
        self.break_polling(1, "401")

    def flood_next(self, method: str, retry_after: int, chat_id: int | None = None) -> None:
        """Answer the next ``method`` call with a 429 flood wait."""
        self.fail(method, 429, f"Too Many Requests: retry after {retry_after}",
                  retry_after=retry_after, chat_id=chat_id)

    def _next_id(self, chat_id: int) -> int:
        counter = self._message_ids.get(chat_id)
        if counter is None:
            counter = self._message_ids[chat_id] = itertools.count(1)
        return next(counter)

    def _store(self, raw: JSON, from_bot: bool) -> ChatMessage:
        chat_id = raw["chat"]["id"]
        reply = raw.get("reply_to_message")
        message = ChatMessage(
            chat_id=chat_id, message_id=raw["message_id"], from_bot=from_bot,
            text=raw.get("text", ""), entities=list(raw.get("entities", [])),
            thread_id=raw.get("message_thread_id") if raw.get("is_topic_message") else None,
            reply_to=reply["message_id"] if reply else None, sent_at=self.clock(),
            versions=[raw.get("text", "")], raw=raw,
        )
        self.messages[(chat_id, message.message_id)] = message
        return message

    def create_topic(self, chat_id: int, name: str, creator: JSON) -> int:
        """A forum topic; its id is the id of the service message that created it."""
        message_id = self._next_id(chat_id)
        raw: JSON = {"message_id": message_id, "date": int(time.time()),
                     "chat": self.chats[chat_id], "from": creator,
                     "message_thread_id": message_id, "is_topic_message": True,
                     "forum_topic_created": {"name": name, "icon_color": 7322096}}
        self._store(raw, from_bot=False)
        return message_id

    def upload(self, name: str, content: bytes, mime_type: str = "application/toml") -> JSON:
        """A file a user sends, as its ``document`` field (getFile then serves it)."""
        number = len(self.files) + 1
        file_id = f"BQACAgIAAxkBAAI{number:04d}fake-document"
        self.files[file_id] = (f"documents/file_{number}{os.path.splitext(name)[1]}", content)
        return {"file_id": file_id, "file_unique_id": f"AgAD{number:04d}", "file_name": name,
                "mime_type": mime_type, "file_size": len(content)}

    def post(
        self,
        chat_id: int,
        sender: JSON,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        sender_chat: JSON | None = None,
        entities: list[JSON] | None = None,
        document: JSON | None = None,
    ) -> JSON:
        """A user (or ``sender_chat``) writes in a chat; returns the update.

        With ``document`` (from ``upload``) the message is that file, ``text`` its caption.
        """
        chat = self.chats[chat_id]
        raw: JSON = {"message_id": self._next_id(chat_id), "date": int(time.time()),
                     "chat": chat, "from": sender}
        found = auto_entities(text) if entities is None else entities
        if document is not None:
            raw["document"] = document
            if text:
                raw["caption"] = text
            if found:
                raw["caption_entities"] = found
        else:
            raw["text"] = text
            if found:
                raw["entities"] = found
        if sender_chat is not None:
            raw["sender_chat"] = sender_chat
        if thread_id is not None:
            raw["message_thread_id"] = thread_id
            raw["is_topic_message"] = True
            # In a forum a message "replies" to its topic's creation unless it replies to
            # something else.
            reply_to = reply_to if reply_to is not None else thread_id
        if reply_to is not None:
            raw["reply_to_message"] = self.messages[(chat_id, reply_to)].raw
        self._store(raw, from_bot=False)
        return self._push({"message": raw})

    def edit_post(self, update: JSON, text: str) -> JSON:
        """The author edits a message they posted; returns the ``edited_message`` update."""
        raw = {**update["message"], "text": text, "edit_date": int(time.time())}
        found = auto_entities(text)
        if found:
            raw["entities"] = found
        return self._push({"edited_message": raw})

    def _push(self, body: JSON) -> JSON:
        update = {"update_id": next(self._update_ids), **body}
        self.last_update_id = update["update_id"]
        if self.webhook is None:  # with a webhook set, the test delivers it
            self._updates.append(update)
            self._bump()
        return update

    async def deliver_webhook(self, update: JSON) -> int:
        """POST ``update`` to the webhook the bot registered; returns the HTTP status."""
        assert self.webhook is not None, "the bot registered no webhook"
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with ClientSession() as session, session.post(
            self.webhook["url"], json=update, headers=headers
        ) as response:
            return response.status

    # -- what users see ----------------------------------------------------------------

    def bot_messages(self, chat_id: int, thread_id: int | str | None = "any"
                     ) -> list[ChatMessage]:
        """The bot's messages in a chat (or one of its topics), oldest first."""
        found = [m for (chat, _), m in self.messages.items()
                 if chat == chat_id and m.from_bot and not m.deleted]
        if thread_id != "any":
            found = [m for m in found if m.thread_id == thread_id]
        return sorted(found, key=lambda m: m.message_id)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5.0) -> None:
        """Wait (at most ``seconds`` of wall time) until ``predicate()`` holds."""
        await asyncio.wait_for(self._wait_change(predicate), seconds)

    # -- flood control -------------------------------------------------------------

    def _flood_check(self, chat_id: int) -> None:
        now = self.clock()
        chat = self.chats.get(chat_id, {})
        is_group = chat.get("type") in ("group", "supergroup")
        limit, window = ((self.flood.group_per_minute, 60.0) if is_group
                         else (self.flood.private_per_second, 1.0))
        posts = self._posts.setdefault(chat_id, deque())
        for times, size, span in ((posts, limit, window),
                                  (self._recent, self.flood.global_per_second, 1.0)):
            while times and times[0] <= now - span:
                times.popleft()
            if len(times) >= size:
                wait = max(1, math.ceil(times[len(times) - size] + span - now))
                raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        posts.append(now)
        self._recent.append(now)

    # -- methods ---------------------------------------------------------------------

    def _chat(self, params: JSON) -> JSON:
        chat_id = params.get("chat_id")
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None and chat_id in self.users:
            # A user who never started a private chat with the bot.
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self.migrated:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to=self.migrated[chat_id])
        if chat_id in self.kicked:
            kind = "supergroup chat" if chat["type"] == "supergroup" else "group chat"
            if chat["type"] == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        return chat

    def _render(self, params: JSON) -> tuple[str, list[JSON]]:
        text = params.get("text", "")
        if params.get("parse_mode") == "HTML":
            visible, entities = parse_html(text)
        elif params.get("parse_mode"):
            raise ApiError(400, f"Bad Request: unsupported parse_mode {params['parse_mode']}")
        else:
            visible, entities = text, list(params.get("entities", []))
        visible, entities = _strip_visible(visible, entities)
        if not visible:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return visible, entities

    async def _api_getMe(self, params: JSON) -> JSON:
        return self.me

    async def _api_setMyCommands(self, params: JSON) -> bool:
        self.commands = list(params.get("commands", []))
        return True

    async def _api_getMyCommands(self, params: JSON) -> list[JSON]:
        return self.commands

    async def _api_deleteWebhook(self, params: JSON) -> bool:
        self.webhook = None
        return True

    async def _api_setWebhook(self, params: JSON) -> bool:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token"),
                        "allowed_updates": params.get("allowed_updates")}
        return True

    async def _api_getUpdates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if params.get("allowed_updates") is not None:
            self._allowed = list(params["allowed_updates"])  # kept for later calls, as Telegram

        def ready() -> list[JSON]:
            # Updates below the offset are confirmed: Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            allowed = self._allowed or ["message", "edited_message", "channel_post",
                                        "edited_channel_post", "callback_query"]
            return [u for u in self._updates if any(kind in u for kind in allowed)]

        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")
        self._take_poll_fault()
        found = ready()
        if found or timeout <= 0 or self._closing:
            return found[:100]
        try:
            async with asyncio.timeout(timeout):
                await self._wait_change(
                    lambda: bool(ready()) or self._closing or bool(self._poll_faults))
        except TimeoutError:
            pass
        self._take_poll_fault()
        return ready()[:100]

    async def _api_sendChatAction(self, params: JSON) -> bool:
        self._chat(params)
        return True

    async def _api_sendMessage(self, params: JSON) -> JSON:
        chat = self._chat(params)
        visible, entities = self._render(params)
        self._flood_check(chat["id"])
        raw: JSON = {"message_id": self._next_id(chat["id"]), "date": int(time.time()),
                     "chat": chat, "from": self.me, "text": visible}
        if entities:
            raw["entities"] = entities
        thread_id = params.get("message_thread_id")
        if thread_id is not None:
            if not chat.get("is_forum"):
                raise ApiError(400, "Bad Request: message thread not found")
            raw["message_thread_id"] = thread_id
            raw["is_topic_message"] = True
        reply = params.get("reply_parameters")
        if reply is not None:
            target = self.messages.get((chat["id"], reply["message_id"]))
            if target is not None and not target.deleted:
                raw["reply_to_message"] = target.raw
            elif not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
        self._store(raw, from_bot=True)
        return raw

    async def _api_editMessageText(self, params: JSON) -> JSON:
        chat = self._chat(params)
        message = self.messages.get((chat["id"], int(params.get("message_id") or 0)))
        if message is None or message.deleted or not message.from_bot:
            raise ApiError(400, "Bad Request: message to edit not found")
        visible, entities = self._render(params)
        if visible == message.text and entities == message.entities:
            raise ApiError(400, NOT_MODIFIED)
        self._flood_check(chat["id"])
        message.text, message.entities = visible, entities
        message.versions.append(visible)
        message.edit_times.append(self.clock())
        message.raw = {**message.raw, "text": visible, "entities": entities,
                       "edit_date": int(time.time())}
        return message.raw

    def member_payload(self, chat_id: int, user: JSON) -> JSON:
        """What getChatMember answers for ``user`` in ``chat_id``."""
        if self.owners.get(chat_id) == user["id"]:
            return {"status": "creator", "user": user, "is_anonymous": False}
        if user["id"] in self.admins.get(chat_id, set()):
            rights = {name: True for name in (
                "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                "can_restrict_members", "can_promote_members", "can_change_info",
                "can_invite_users", "can_post_stories", "can_edit_stories",
                "can_delete_stories", "can_pin_messages", "can_manage_topics")}
            return {"status": "administrator", "user": user, "can_be_edited": False,
                    "is_anonymous": False, **rights}
        return {"status": "member", "user": user}

    async def _api_getChatAdministrators(self, params: JSON) -> list[JSON]:
        chat = self._chat(params)
        if chat["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        ids = [self.owners[chat["id"]], *sorted(self.admins.get(chat["id"], set()))]
        return [self.member_payload(chat["id"], self.users[user_id]) for user_id in ids]

    async def _api_getFile(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"AgAD{file_id[15:19]}",
                "file_size": len(content), "file_path": path}

    async def _download(self, request: web.Request) -> web.Response:
        """A file download (``<base_file_url><token>/<file_path>``), as Telegram serves it."""
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": "Not Found"}, status=404)
        path = request.match_info["path"]
        for file_path, content in self.files.values():
            if file_path == path:
                self.calls.append(ApiCall("download", {"file_path": path}, self.clock()))
                return web.Response(body=content, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"},
                                 status=404)

    async def _api_getChatMember(self, params: JSON) -> JSON:
        chat = self._chat(params)
        user = self.users.get(params.get("user_id", 0))
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        return self.member_payload(chat["id"], user)
