"""Telegram's limits: how it counts a message's length, and its flood limits, tracked per
chat so cabot stays under them instead of hitting 429s.

Telegram allows about one message a second per chat, 20 messages a minute per group and 30
a second overall; edits count like messages. Streaming edits are optional (a later one
shows more text), so they are paced: at most one per ``edit_interval`` in any chat, and in
a group from a token bucket that allows a short burst (a short reply streams at full speed)
and then refills at the rate the group's minute allows, keeping a reserve for new messages.
Sends and the final edit of a reply are never dropped, only delayed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TLRUCache

GLOBAL_PER_SECOND = 30
GROUP_WINDOW = 60.0
GROUP_RESERVE = 4
"""Slots of a group's per-minute budget that streaming edits leave to new messages."""
GROUP_EDIT_BURST = 5.0
"""Edits a group may get in a row (at ``edit_interval``) before the refill rate applies."""


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts its 4,096 (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class FloodLimits:
    """How fast cabot posts to Telegram.

    Attributes:
        edit_interval: the minimum seconds between two edits in one chat.
        group_per_minute: messages plus edits per minute in one group.
        max_retry_wait: the longest ``retry_after`` cabot waits out; longer ones fail.
    """

    edit_interval: float = 1.0
    group_per_minute: int = 20
    max_retry_wait: float = 30.0

    @property
    def group_edit_rate(self) -> float:
        """Edits per second a group's bucket refills at (its minute's budget less a reserve)."""
        return max(self.group_per_minute - GROUP_RESERVE, 1) / GROUP_WINDOW


@dataclass
class _Chat:
    posts: deque[float] = field(default_factory=deque)
    last_edit: float = float("-inf")
    blocked_until: float = float("-inf")
    edit_tokens: float = GROUP_EDIT_BURST
    tokens_at: float = float("-inf")


class ChatBudget:
    """What each chat has spent of its flood budget; all times from ``clock``.

    A chat is forgotten once nothing it spent can matter any more (its last post left the
    group window and any wait Telegram asked for has passed), so the table stays small in
    a bot that sees many chats over its lifetime.
    """

    def __init__(self, limits: FloodLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        # Room for every chat that can have posted within an entry's lifetime.
        lifetime = GROUP_WINDOW + limits.max_retry_wait
        self._chats: TLRUCache[int, _Chat] = TLRUCache(
            maxsize=math.ceil(GLOBAL_PER_SECOND * lifetime) + 1, ttu=self._expiry, timer=clock
        )
        self._recent: deque[float] = deque()

    def _expiry(self, _chat_id: int, chat: _Chat, _now: float) -> float:
        last = max(chat.posts[-1] if chat.posts else float("-inf"), chat.last_edit)
        return max(last + GROUP_WINDOW + self.limits.max_retry_wait, chat.blocked_until)

    def _chat(self, chat_id: int) -> _Chat:
        # A chat that spent nothing yet is only stored once it does (``_keep``).
        chat = self._chats.get(chat_id)
        return chat if chat is not None else _Chat()

    def _keep(self, chat_id: int, chat: _Chat) -> None:
        self._chats[chat_id] = chat  # (re)computes when it may be forgotten

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()

    @staticmethod
    def _window_delay(posts: deque[float], allowed: int, window: float, now: float) -> float:
        while posts and posts[0] <= now - window:
            posts.popleft()
        if len(posts) < allowed:
            return 0.0
        if allowed <= 0:
            return window
        return posts[len(posts) - allowed] + window - now

    def send_delay(self, chat_id: int, is_group: bool) -> float:
        """Seconds until a new message may be posted in the chat (0: now)."""
        now = self._clock()
        chat = self._chat(chat_id)
        self._trim(now)
        delay = max(chat.blocked_until - now,
                    self._window_delay(self._recent, GLOBAL_PER_SECOND, 1.0, now))
        if is_group:
            delay = max(delay, self._window_delay(
                chat.posts, self.limits.group_per_minute, GROUP_WINDOW, now))
        return max(delay, 0.0)

    def edit_delay(self, chat_id: int, is_group: bool) -> float:
        """Seconds until the chat's next edit is due (0: now)."""
        now = self._clock()
        chat = self._chat(chat_id)
        delay = max(self.send_delay(chat_id, False),
                    chat.last_edit + self.limits.edit_interval - now)
        if is_group:
            allowed = max(self.limits.group_per_minute - GROUP_RESERVE, 1)
            delay = max(delay, self._window_delay(chat.posts, allowed, GROUP_WINDOW, now))
            tokens = self._refill(chat, now)
            if tokens < 1.0 - 1e-9:  # not a rounding error away from a whole token
                delay = max(delay, (1.0 - tokens) / self.limits.group_edit_rate)
        return max(delay, 0.0)

    def _refill(self, chat: _Chat, now: float) -> float:
        if chat.tokens_at > float("-inf"):
            gained = (now - chat.tokens_at) * self.limits.group_edit_rate
            chat.edit_tokens = min(GROUP_EDIT_BURST, chat.edit_tokens + gained)
        chat.tokens_at = now
        return chat.edit_tokens

    def spend(self, chat_id: int, *, edit: bool) -> None:
        """Record a message or an edit posted in the chat now."""
        now = self._clock()
        chat = self._chat(chat_id)
        while chat.posts and chat.posts[0] <= now - GROUP_WINDOW:
            chat.posts.popleft()  # only a group's window reads them; private chats pile up
        chat.posts.append(now)
        self._recent.append(now)
        if edit:
            chat.last_edit = now
            self._refill(chat, now)
            chat.edit_tokens -= 1.0
        self._keep(chat_id, chat)

    def block(self, chat_id: int, seconds: float) -> None:
        """Telegram asked to wait ``seconds`` before posting in the chat again."""
        chat = self._chat(chat_id)
        chat.blocked_until = max(chat.blocked_until, self._clock() + seconds)
        self._keep(chat_id, chat)
