"""``/memory``: what cabot remembers in this place, word for word and summarised."""

from __future__ import annotations

from bot.commands.context import CommandContext, CommandReply
from bot.messages import Command


async def memory_show(ctx: CommandContext, command: Command) -> CommandReply:
    """``/memory``: the remembered messages here, and the summary of older ones."""
    scope = ctx.message.scope
    count = await ctx.store.summaries.count(scope)
    summary = await ctx.store.summaries.summary(scope)
    place = "thread" if scope.thread is not None else "channel"
    lines = [f"This {place} remembers {count} message{'s' if count != 1 else ''} word for word."]
    if summary is None:
        lines.append("No summary yet: when the conversation no longer fits the model's context "
                     "window, its oldest messages are summarised rather than dropped.")
    else:
        lines.append(f"Older messages ({summary.turns}) are remembered as this summary:")
        lines.append(summary.text)
    lines.append("/forget clears both.")
    return CommandReply("\n".join(lines), True)
