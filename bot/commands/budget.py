"""``/budget``: a community's daily token budgets, shown to anyone, set by its moderators."""

from __future__ import annotations

import re

from bot.budgets import DAY, Budgets
from bot.commands.context import CommandContext, CommandReply
from bot.errors import CommandError
from bot.messages import Command
from bot.store.usage import BudgetKind

UNLIMITED_WORDS = ("0", "off", "none", "unlimited", "default")
_AMOUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*(k|m)?$", re.IGNORECASE)


def parse_tokens(text: str) -> int | None:
    """``5000``, ``5,000``, ``5k`` or ``1.5m`` as a token count; None for 0/off/default.

    Raises:
        CommandError: not a number of tokens.
    """
    word = text.strip().lower().replace(",", "").replace("_", "")
    if word in UNLIMITED_WORDS:
        return None
    match = _AMOUNT.match(word)
    if match is None:
        raise CommandError(f"{text!r} is not a number of tokens; use e.g. 5000 or 5k, or 0 "
                           "to drop this community's own limit.")
    scale = {"k": 1_000, "m": 1_000_000}.get((match.group(2) or "").lower(), 1)
    return round(float(match.group(1)) * scale) or None


def _amount(tokens: int) -> str:
    return f"{tokens:,} tokens" if tokens else "unlimited"


async def budget_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/budget``: this community's daily token budgets and what was used."""
    budgets = ctx.budgets or Budgets(ctx.store.usage)
    scope = ctx.message.scope
    own, member, total = await budgets.community_limits(scope.platform, scope.community)
    operator = budgets.limits
    spent = await budgets.usage.spent(scope.platform, budgets.now() - DAY,
                                      community=scope.community)
    lines = ["Daily token budgets here (over the last 24 hours, counted from what the model "
             "generated):",
             f"  each member: {_amount(member)}"
             + (" (set by this community)" if own.user else ""),
             f"  the whole community: {_amount(total)}"
             + (" (set by this community)" if own.community else "")]
    if operator.user or operator.community:
        lines.append(f"  the operator's limits: {_amount(operator.user)} per person (across "
                     f"communities), {_amount(operator.community)} per community")
    lines.append(f"Used here: {sum(item.tokens for item in spent):,} tokens.")
    lines.append("Community moderators set them with /budget user <tokens> and "
                 "/budget community <tokens> (0 drops the community's own limit).")
    return CommandReply("\n".join(lines), True)


async def budget_user(ctx: CommandContext, command: Command) -> CommandReply:
    """``/budget user <tokens>``: each member's daily tokens in this community."""
    return await _set(ctx, "user", command.word("tokens") or "")


async def budget_community(ctx: CommandContext, command: Command) -> CommandReply:
    """``/budget community <tokens>``: the whole community's daily tokens."""
    return await _set(ctx, "community", command.word("tokens") or "")


async def _set(ctx: CommandContext, kind: BudgetKind, text: str) -> CommandReply:
    budgets = ctx.budgets or Budgets(ctx.store.usage)
    tokens = parse_tokens(text)
    ceiling = budgets.limits.user if kind == "user" else budgets.limits.community
    if tokens is not None and ceiling and tokens > ceiling:
        raise CommandError(
            f"The operator of this bot allows at most {ceiling:,} tokens "
            f"{'per person' if kind == 'user' else 'per community'} a day; choose that or "
            "less."
        )
    scope = ctx.message.scope
    await budgets.usage.set_budget(scope.platform, scope.community, kind, tokens, ctx.actor)
    _, member, total = await budgets.community_limits(scope.platform, scope.community)
    what = "Each member" if kind == "user" else "The whole community"
    now = member if kind == "user" else total
    if tokens is None:
        return CommandReply(f"Dropped this community's own {kind} budget: {what.lower()} now "
                            f"has {_amount(now)} a day (the operator's limit).")
    return CommandReply(f"{what} may now have {_amount(now)} generated per 24 hours here.")
