"""Daily token budgets: what the model may generate per member and per community.

Three limits can apply to one reply, each over a rolling day (the last 24 hours):

- the operator's per-person limit (``CABOT_USER_DAILY_TOKENS``), counted across every
  community of a platform, like the per-user rate limit;
- a community's per-member limit (``/budget user``), counted in that community;
- a community's total (``/budget community``, at most ``CABOT_COMMUNITY_DAILY_TOKENS``).

0 means unlimited. A community may set its limits lower than the operator's, never
higher. Usage is what the model actually generated, counted as the reply streams, and it
is stored, so a restart forgets nothing. A reply that starts within budget finishes. A
member over budget is told once, with when it frees up, and then not answered until it
does (a flood of refused requests never becomes a flood of refusals).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lru import LRU

from bot.messages import IncomingMessage, Scope
from bot.store.usage import CommunityBudgets, Spent, UsageStore

DAY = 24 * 3600.0
"""The rolling window, in seconds."""
TOLD_MEMBERS = 100_000
"""Members whose "over budget" notice is remembered, so it is said once per window."""


@dataclass(frozen=True)
class DailyLimits:
    """The operator's limits (0: unlimited)."""

    user: int = 0
    community: int = 0


@dataclass(frozen=True)
class Limit:
    """One limit that applies to a member here, and how much of it is spent."""

    kind: str
    """``person`` (the operator's), ``member`` (this community's) or ``community``."""
    tokens: int
    used: int
    frees_at: float | None
    """When enough usage has aged out of the window to be under the limit again."""

    @property
    def left(self) -> int:
        return max(0, self.tokens - self.used)

    def describe(self) -> str:
        """``1,200 of 5,000 tokens left for you in this community``."""
        whose = {"person": "for you (every community)",
                 "member": "for you in this community",
                 "community": "for this whole community"}[self.kind]
        return f"{self.left:,} of {self.tokens:,} tokens left {whose}"


@dataclass(frozen=True)
class BudgetState:
    """Every limit that applies to one member in one place."""

    limits: tuple[Limit, ...]

    @property
    def exhausted(self) -> Limit | None:
        """The limit in the way (the one that frees up last), if one is spent."""
        spent = [limit for limit in self.limits if limit.left == 0]
        return max(spent, key=lambda limit: limit.frees_at or 0.0) if spent else None

    @property
    def left(self) -> int | None:
        """Tokens left before a limit is reached (None: no limit applies)."""
        return min((limit.left for limit in self.limits), default=None)


@dataclass(frozen=True)
class Verdict:
    """Whether to answer, and what to say when not (None: stay quiet, told already)."""

    allowed: bool
    notice: str | None = None


def effective(operator: int, community: int | None) -> int:
    """The lower of two limits where 0 (or None) means unlimited."""
    if not community:
        return operator
    return community if not operator else min(operator, community)


def frees_at(spent: Sequence[Spent], limit: int, window: float = DAY) -> float | None:
    """When usage (oldest first, all inside the window) drops under ``limit`` again."""
    total = sum(item.tokens for item in spent)
    if total < limit:
        return None
    for item in spent:
        total -= item.tokens
        if total < limit:
            return item.at + window
    return None


def in_words(seconds: float) -> str:
    """``3 h 12 min``, ``12 min``, ``under a minute``."""
    minutes = math.ceil(seconds / 60)
    if minutes <= 1:
        return "about a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class Budgets:
    """Checks members' budgets before a reply and counts what each reply generated.

    Args:
        usage: where usage and communities' budgets are stored.
        limits: the operator's limits.
        clock: wall-clock time (usage outlives the process); default: the store's.
    """

    def __init__(self, usage: UsageStore, limits: DailyLimits | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.usage = usage
        self.limits = limits or DailyLimits()
        self._clock = clock if clock is not None else usage.now
        self._told: LRU[tuple[str, str, str], float] = LRU(TOLD_MEMBERS)

    def now(self) -> float:
        """The budgets' clock."""
        return self._clock()

    async def community_limits(self, platform: str, community: str
                               ) -> tuple[CommunityBudgets, int, int]:
        """A community's own budgets, and the per-member and total limits in effect."""
        own = await self.usage.budgets(platform, community)
        return (own, effective(self.limits.user, own.user),
                effective(self.limits.community, own.community))

    async def state(self, scope: Scope, user: str, own: CommunityBudgets | None = None
                    ) -> BudgetState:
        """Every limit on ``user`` in ``scope``, and how much of each is spent."""
        since = self._clock() - DAY
        if own is None:
            own = await self.usage.budgets(scope.platform, scope.community)
        limits: list[Limit] = []
        wanted = [
            ("person", self.limits.user, {"user": user}),
            ("member", own.user or 0, {"user": user, "community": scope.community}),
            ("community", effective(self.limits.community, own.community),
             {"community": scope.community}),
        ]
        for kind, tokens, where in wanted:
            if not tokens:
                continue
            spent = await self.usage.spent(scope.platform, since, **where)
            limits.append(Limit(kind, tokens, sum(item.tokens for item in spent),
                                frees_at(spent, tokens)))
        return BudgetState(tuple(limits))

    async def check(self, message: IncomingMessage) -> Verdict:
        """Whether ``message`` may be answered within its author's budgets."""
        scope = message.scope
        own = await self.usage.budgets(scope.platform, scope.community)
        if not (self.limits.user or self.limits.community or own.user or own.community):
            return Verdict(True)
        state = await self.state(scope, message.author_id, own)
        spent = state.exhausted
        if spent is None:
            return Verdict(True)
        now = self._clock()
        key = (scope.platform, scope.community, message.author_id)
        if self._told.get(key, 0.0) > now:
            return Verdict(False)
        frees = spent.frees_at or now + DAY
        self._told[key] = frees
        return Verdict(False, over_budget_notice(spent, frees - now))

    async def record(self, message: IncomingMessage, tokens: int) -> None:
        """Count ``tokens`` generated in answer to ``message``."""
        await self.queue_record(message, tokens)

    def queue_record(self, message: IncomingMessage, tokens: int) -> asyncio.Future[None]:
        """`record`, queued now (to commit with the reply's memory); done once committed."""
        scope = message.scope
        return self.usage.queue_record(scope.platform, scope.community, message.author_id,
                                       tokens, keep=DAY)


def over_budget_notice(limit: Limit, wait: float) -> str:
    """What a member over budget is told, once per window."""
    what = {"person": f"You've used your daily {limit.tokens:,} tokens",
            "member": f"You've used your daily {limit.tokens:,} tokens in this community",
            "community": f"This community has used its daily {limit.tokens:,} tokens",
            }[limit.kind]
    return (f"{what} (counted over the last 24 hours); I'll answer you again in "
            f"{in_words(wait)}, when enough of it frees up. /me shows what is left.")
