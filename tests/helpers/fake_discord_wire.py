"""Discord's wire format as the fake speaks it: records, limits, errors and mentions."""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000
MAX_CONTENT = 2000
INTERACTION_DEADLINE = 3.0
EPHEMERAL = 1 << 6
LOADING = 1 << 7
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 53) - 1
MESSAGE_CONTENT_INTENT = 1 << 15
VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY = 1 << 10, 1 << 11, 1 << 16
EVERYONE_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY

EVERYONE_MENTION = re.compile(r"@(everyone|here)")
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(frozen=True)
class RateBudget:
    """Discord's per-channel message bucket: ``limit`` sends and edits per ``window`` s."""

    limit: int = 5
    window: float = 5.0


@dataclass
class Recorded:
    """One request the client made, and the status the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeMessage:
    """A message as users see it."""

    id: str
    channel_id: str
    author_id: str
    content: str
    at: float
    ephemeral: bool = False
    loading: bool = False
    deleted: bool = False
    reply_to: str | None = None
    allowed_mentions: Any = None
    pinged_everyone: bool = False
    pinged_users: list[str] = field(default_factory=list)
    pinged_roles: list[str] = field(default_factory=list)
    edits: list[float] = field(default_factory=list)
    interaction_id: str | None = None
    attachments: list[JSON] = field(default_factory=list)
    """Files attached to it, as Discord describes them (served at their ``url``)."""

    @property
    def pinged_anyone(self) -> bool:
        """Whether this message notified anybody."""
        return self.pinged_everyone or bool(self.pinged_users) or bool(self.pinged_roles)


@dataclass
class FakeGuild:
    """A guild: roles (the @everyone role's id is the guild id), channels, threads, members."""

    id: str
    name: str
    owner_id: str
    roles: list[JSON] = field(default_factory=list)
    channels: list[JSON] = field(default_factory=list)
    threads: list[JSON] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class FakeInteraction:
    """A slash-command interaction and what was answered to it."""

    id: str
    token: str
    user_id: str
    channel_id: str
    created_at: float
    payload: JSON
    callback_type: int | None = None
    deferred_ephemeral: bool = False
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    choices: list[JSON] | None = None
    late: bool = False

    def answers(self) -> list[FakeMessage]:
        """The visible answers (not deleted, not still 'thinking'), oldest first."""
        shown = [self.original] if self.original is not None else []
        return [m for m in [*shown, *self.followups] if not m.deleted and not m.loading]


async def read_json(request: web.Request) -> Any:
    raw = await request.read()  # aiohttp keeps the body, so reading twice is fine
    return json.loads(raw) if raw else None


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                   ) -> web.Response:
    # Content-Type exactly application/json: discord.py compares the header verbatim.
    return web.Response(
        body=json.dumps(data).encode(), status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error(status: int, code: int, message: str, errors: JSON | None = None) -> web.Response:
    body: JSON = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return json_response(body, status)


class RateBucket:
    """One channel's fixed-window message budget, reported in Discord's headers."""

    def __init__(self, budget: RateBudget) -> None:
        self.budget = budget
        self.remaining = budget.limit
        self.reset_at = -math.inf

    """One channel's fixed-window message budget, as Discord reports it in headers."""

    def take(self, now: float) -> float | None:
        """Spend one request; the seconds to wait if the budget is exhausted."""
        if now >= self.reset_at:
            self.reset_at = now + self.budget.window
            self.remaining = self.budget.limit
        if self.remaining <= 0:
            return self.reset_at - now
        self.remaining -= 1
        return None

    def headers(self, now: float) -> dict[str, str]:
        after = max(0.0, self.reset_at - now)
        return {
            "X-RateLimit-Limit": str(self.budget.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": f"{time.time() + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
            "X-RateLimit-Bucket": "c0ffee-channel-messages",
        }




def apply_mentions(message: FakeMessage, allowed: Any, replied_author: str | None) -> None:
    """Who Discord would notify for ``message``, from its content and ``allowed_mentions``.

    Without ``allowed_mentions`` Discord parses everything, and a reply pings its author.
    """
    message.allowed_mentions = allowed
    parse = ["users", "roles", "everyone"] if allowed is None else allowed.get("parse", [])
    users = [] if allowed is None else allowed.get("users", [])
    roles = [] if allowed is None else allowed.get("roles", [])
    content = message.content
    message.pinged_everyone = "everyone" in parse and bool(EVERYONE_MENTION.search(content))
    message.pinged_users = [u for u in USER_MENTION.findall(content)
                            if "users" in parse or u in users]
    message.pinged_roles = [r for r in ROLE_MENTION.findall(content)
                            if "roles" in parse or r in roles]
    replied_user = True if allowed is None else allowed.get("replied_user", False)
    if replied_author is not None and replied_user:
        message.pinged_users.append(replied_author)


def invalid_content(body: Any) -> web.Response | None:
    """Discord's 400 for a message that is empty or over 2,000 characters, else None."""
    content = (body or {}).get("content")
    if content is not None and len(content) > MAX_CONTENT:
        return error(400, 50035, "Invalid Form Body", {"content": {"_errors": [{
            "code": "BASE_TYPE_MAX_LENGTH",
            "message": f"Must be {MAX_CONTENT} or fewer in length.",
        }]}})
    if not content or not content.strip():
        return error(400, 50006, "Cannot send an empty message")
    return None


def too_many_requests(retry_after: float, headers: dict[str, str]) -> web.Response:
    """A 429 as Discord sends it: ``Via`` header and JSON ``retry_after`` (discord.py
    treats a 429 without them as a Cloudflare ban)."""
    return json_response(
        {"message": "You are being rate limited.", "retry_after": retry_after,
         "global": False},
        429,
        {**headers, "X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
         "Retry-After": str(math.ceil(retry_after)), "Via": "1.1 google"},
    )
