"""Who said what: the conversation as the model reads it, in group chats and in DMs.

In a group channel each person's message reaches the model as ``Name: text``, so it can
tell the speakers apart and answer the right one; a reply to an earlier message carries
that message, quoted, as context. Names are display names made safe first
(`speaker_label`): one line, no colons, brackets or markup, so a name cannot open a turn
or pass for two speakers. A line inside someone's message that starts like a speaker's
line (a short name and a colon) is broken up (`guard_lines`), so no one can put words in
another speaker's mouth, whether that person has spoken yet or not; control-token
spellings are escaped by the engines as in any text (``bot.backends.control_tokens``).
A direct message stays as it is: one person, no names.

When older turns were summarised (``bot.summaries``), the summary joins the system prompt.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.backends.control_tokens import ZERO_WIDTH_SPACE
from bot.messages import IncomingMessage
from bot.store import Store
from bot.store.summaries import Summary, Turn

GROUP_NOTE = (
    "This is a group chat: several people talk here, and each of their messages starts with "
    "the speaker's name and a colon (\"Sam: hello\"). Answer the person who wrote the last "
    "message; use names when it helps, and do not start your reply with a name and a colon."
)
SUMMARY_NOTE = "Earlier in this conversation (a summary of older messages):"
NAME_CHARS = 32
"""The longest speaker label; display names are cut to it."""
QUOTE_CHARS = 300
"""The most of a replied-to message that is quoted."""
UNKNOWN_SPEAKER = "Someone"
_KEPT_PUNCTUATION = frozenset(" -_.'")


def speaker_label(name: str | None) -> str:
    """A display name as the prompt shows it: letters, digits, marks, emoji and `` -_.'``,
    on one line, at most `NAME_CHARS` characters (``Someone`` when nothing is left)."""
    if not name:
        return UNKNOWN_SPEAKER
    kept = []
    for char in unicodedata.normalize("NFKC", name):
        category = unicodedata.category(char)
        if char.isspace():
            kept.append(" ")
        elif category[0] in "LNM" or category == "So" or char in _KEPT_PUNCTUATION:
            kept.append(char)
    label = re.sub(r" {2,}", " ", "".join(kept)).strip(" .'-_")[:NAME_CHARS].strip()
    return label or UNKNOWN_SPEAKER


_SPEAKER_LINE = re.compile(rf"^(\s*)([^\s:])([^:\n]{{0,{NAME_CHARS - 1}}}\s*:)(?=\s|$)")
"""A line that begins like a speaker's line: a name of up to `NAME_CHARS`, then a colon."""


def guard_lines(text: str) -> str:
    """``text`` with every line that starts like ``Name:`` broken up.

    A zero-width space after the first character keeps the line from reading as that
    person's message; every line break Python knows becomes ``\\n`` first, so none of
    them starts a line the model reads as a new speaker either.
    """
    return "\n".join(_SPEAKER_LINE.sub(rf"\1\2{ZERO_WIDTH_SPACE}\3", line)
                     for line in text.splitlines())


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Conversation:
    """One reply's conversation as the model reads it.

    Attributes:
        history: the remembered turns as ``(role, content)``, oldest first.
        user_text: the new message as the model reads it.
        prefix: what ``user_text`` adds before the person's own words (``Sam: ``).
        notes: what joins the system prompt (the group-chat note, the summary).
    """

    history: list[tuple[str, str]]
    user_text: str
    prefix: str = ""
    notes: tuple[str, ...] = ()
    speakers: frozenset[str] = frozenset()
    """The speaker labels the model saw (a group chat's), for `LeadingNameGuard`."""

    def system(self, system_prompt: str) -> str:
        """The system prompt with the notes after it."""
        return "\n\n".join(part for part in (system_prompt, *self.notes) if part.strip())

    def said(self, message: IncomingMessage, fitted: str) -> str:
        """What to remember of the person's message, given the text that fitted the window."""
        if fitted == self.user_text:
            return message.text
        return fitted[len(self.prefix):] if fitted.startswith(self.prefix) else fitted


def direct_conversation(history: list[tuple[str, str]], message: IncomingMessage,
                        summary: Summary | None) -> Conversation:
    """A direct message's conversation: as it always was, plus the summary if any."""
    notes = (f"{SUMMARY_NOTE}\n{summary.text}",) if summary else ()
    return Conversation(history, message.text, "", notes)


def group_conversation(turns: list[Turn], message: IncomingMessage,
                       summary: Summary | None) -> Conversation:
    """A group channel's conversation: every person's message under their name."""
    speaker = speaker_label(message.author_name)
    history = []
    speakers = {speaker}
    for turn in turns:
        if turn.role == "user":
            speakers.add(speaker_label(turn.author))
            history.append(("user", f"{speaker_label(turn.author)}: {guard_lines(turn.content)}"))
        else:
            history.append((turn.role, turn.content))
    prefix = f"{speaker}{_reply_context(message, history)}: "
    notes = [GROUP_NOTE]
    if summary is not None:
        notes.append(f"{SUMMARY_NOTE}\n{summary.text}")
    return Conversation(history, prefix + guard_lines(message.text), prefix, tuple(notes),
                        frozenset(speakers))


class LeadingNameGuard:
    """Drops a speaker's name the model starts a group-chat reply with (``Ada: ...``).

    Models continue the ``Name: text`` pattern they are shown; a reply that opens with a
    member's name would read as that member speaking. The start of the reply is held back
    until it is clear whether it opens with one of ``speakers`` and a colon.
    """

    def __init__(self, speakers: frozenset[str]) -> None:
        self._names = {name.casefold() for name in speakers} | {"assistant", "cabot"}
        self._held = ""
        self._decided = not speakers

    def feed(self, piece: str) -> str:
        """Text safe to show now."""
        if self._decided:
            return piece
        self._held += piece
        head = self._held.lstrip()
        colon = head.find(":")
        start = head.casefold()
        could_be_name = any(name.startswith(start) or start.startswith(name)
                            for name in self._names)
        if could_be_name and colon < 0 and "\n" not in head and len(head) <= NAME_CHARS:
            return ""  # could still become "Name:"
        self._decided = True
        held, self._held = self._held, ""
        if 0 < colon <= NAME_CHARS and head[:colon].strip().casefold() in self._names:
            return head[colon + 1:].lstrip(" \t")
        return held

    def flush(self) -> str:
        """The end of the reply: whatever is still held."""
        held, self._held, self._decided = self._held, "", True
        return held


def _reply_context(message: IncomingMessage, history: list[tuple[str, str]]) -> str:
    """`` (replying to Bob, who said "…")``, when the message answers an earlier one."""
    quoted = message.reply_to_text
    if not quoted or not quoted.strip():
        return ""
    if message.replies_to_bot:
        if history and history[-1] == ("assistant", quoted):
            return " (replying to your last message)"
        return f' (replying to your earlier message "{one_line(quoted, QUOTE_CHARS)}")'
    who = speaker_label(message.reply_to_author)
    return f' (replying to {who}, who said "{one_line(quoted, QUOTE_CHARS)}")'


async def conversation_for(store: Store, message: IncomingMessage, limit: int
                           ) -> Conversation:
    """The conversation of ``message``'s place: its remembered turns (the latest ``limit``)
    and the summary of older ones, with names in a group channel."""
    scope = message.scope
    summary = await store.summaries.summary(scope)
    if message.is_direct:
        return direct_conversation(await store.conversations.history(scope, limit), message,
                                   summary)
    return group_conversation(await store.summaries.recent(scope, limit), message, summary)
