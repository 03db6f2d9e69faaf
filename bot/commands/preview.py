"""``/profile preview`` and ``/profile diff``: a stack tried, or compared, before it is used."""

from __future__ import annotations

from bot.commands.context import CommandContext, CommandReply
from bot.commands.render_changes import describe_diff, describe_preview
from bot.commands.stacks import candidate, in_effect, known
from bot.errors import CommandError
from bot.messages import Command
from profiles.diff import diff_plans


async def profile_preview(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile preview <profile or layers...> [message]``: both answers, to the asker."""
    words = list(command.words("stack"))
    text = command.word("message")
    if text is None:
        # Typed as one line: the names come first, the message is what follows them.
        library = await ctx.resolver.library_for(ctx.message.scope.platform,
                                                 ctx.message.scope.community)
        cut = next((i for i, word in enumerate(words) if not known(library, word)), len(words))
        if cut == 0:
            await candidate(ctx, words[:1])  # raises: an unknown name, with suggestions
        words, rest = words[:cut], words[cut:]
        text = " ".join(rest) or None
    chosen = await candidate(ctx, words)
    current = await in_effect(ctx)
    if ctx.previewer is None:
        raise CommandError("Previews are not available here (no model is running).")
    found = await ctx.previewer.conversation(ctx.store, ctx.message, text)
    if found is None:
        raise CommandError(
            "Nothing was said here yet to preview with: add a message, e.g. "
            f"/profile preview {' '.join(words)} tell me about your day"
        )
    text, conversation = found
    answers = await ctx.previewer.answer(ctx.message, [chosen.plan, current.plan], text,
                                         conversation)
    labels = [f"With {chosen.label}", f"With {current.label}"]
    return CommandReply(describe_preview(text, list(zip(labels, answers, strict=True))),
                        ephemeral=True, private=True)


async def profile_diff(ctx: CommandContext, command: Command) -> CommandReply:
    """``/profile diff <a> [b]``: what ``a`` adds and removes compared with ``b`` (or here)."""
    first = await candidate(ctx, [command.word("a") or ""])
    b = command.word("b")
    second = await candidate(ctx, [b]) if b else await in_effect(ctx)
    text = describe_diff(diff_plans(first.plan, second.plan), _capital(first.label),
                         second.label)
    return CommandReply(text, ephemeral=True)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
