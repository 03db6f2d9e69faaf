"""A terminal chat that behaves like one community with a few channels.

Lines starting with ``:`` control the console itself (``:channel NAME``, ``:thread NAME``,
``:mod on|off``, ``:who NAME``, ``:quit``); lines starting with ``/`` are cabot commands;
anything else is a message addressed to the bot in the current channel.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from bot.adapter import Capabilities, MessageSink
from bot.messages import IncomingMessage, OutgoingMessage, Scope, SentMessage

CONSOLE_HELP = """\
Console: type a message to talk to cabot in the current channel.
  :channel NAME   switch channel (each has its own profile and memory)
  :thread NAME    talk in a thread of this channel (:thread off to leave it)
  :mod on|off     act as a moderator or not
  :who NAME       change your name
  :group on|off   a group channel (cabot tells the model who said what) or a direct chat
  :quit           leave
Commands: /help lists cabot's commands, e.g. /profile show, /profile explain, /profile use kids.
A ``` code block opened on a line runs until it is closed: /layer create NAME ```toml
starts a layer's TOML on the next lines."""
FENCE = "```"


class ConsoleAdapter:
    """The bot in a terminal: one community, switchable channels and moderator flag."""

    name = "console"

    def __init__(
        self,
        output: TextIO | None = None,
        *,
        community: str = "console",
        channel: str = "general",
        moderator: bool = True,
        author: str = "you",
        settle: Callable[[], Awaitable[None]] | None = None,
        bare: bool = False,
        notices: TextIO | None = None,
    ) -> None:
        self.capabilities = Capabilities(max_message_length=4000, can_edit=True, edit_interval=0.0)
        self._out = output if output is not None else sys.stdout
        self.community = community
        self.channel = channel
        self.thread: str | None = None
        self.moderator = moderator
        self.author = author
        self.group = False
        """A group channel: cabot names each speaker to the model (``:group on``)."""
        self._settle = settle
        self._bare = bare
        self._notices = notices
        self._sink: MessageSink | None = None
        self._ids = itertools.count(1)
        self._shown: dict[str, str] = {}
        self._last_written: str | None = None

    # -- Adapter ------------------------------------------------------------------

    async def start(self, sink: MessageSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    async def send(self, message: OutgoingMessage) -> SentMessage:
        message_id = str(next(self._ids))
        if self._bare:
            # Script mode: only the reply on the output, notices on their own stream.
            if message.ephemeral and self._notices is not None:
                self._notices.write(message.text + "\n")
                return SentMessage(message_id=message_id, in_reply_to=message.in_reply_to)
            self._write(message.text if not self._shown else f"\n{message.text}")
        else:
            who = "cabot (only you see this)" if message.ephemeral else "cabot"
            self._write(f"\n{who}> {message.text}")
        self._shown[message_id] = message.text
        self._last_written = message_id
        return SentMessage(message_id=message_id, in_reply_to=message.in_reply_to)

    async def edit(self, sent: SentMessage, text: str) -> None:
        old = self._shown.get(sent.message_id, "")
        if text.startswith(old) and self._last_written == sent.message_id:
            self._write(text[len(old):])
        elif old.startswith(text) and not old[len(text):].strip():
            pass  # the final text only lost trailing whitespace already on the screen
        elif self._bare:
            self._write(f"\n{text}")
        else:
            self._write(f"\ncabot (edited)> {text}")
        self._shown[sent.message_id] = text
        self._last_written = sent.message_id

    async def show_typing(self, message: IncomingMessage) -> None:
        return None

    # -- the terminal -------------------------------------------------------------

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    @property
    def scope(self) -> Scope:
        return Scope(platform="console", community=self.community, channel=self.channel,
                     thread=self.thread)

    async def say(self, text: str) -> None:
        """Send ``text`` as the console user, in the current channel, and wait for the reply."""
        if self._sink is None:
            raise RuntimeError("the console adapter is not started")
        message = IncomingMessage(
            scope=self.scope,
            message_id=str(next(self._ids)),
            author_id=self.author,
            author_name=self.author,
            text=text,
            is_direct=not self.group,
            mentions_bot=True,
            moderates_channel=self.moderator,
            moderates_community=self.moderator,
        )
        await self._sink(message)
        if self._settle is not None:
            await self._settle()
        self._write("\n")
        self._shown.clear()

    def control(self, line: str) -> bool:
        """Handle a ``:`` console command; False means quit."""
        word, _, arg = line[1:].strip().partition(" ")
        arg = arg.strip()
        if word in ("quit", "exit", "q"):
            return False
        if word == "channel" and arg:
            self.channel, self.thread = arg.lstrip("#"), None
            self._write(f"(now in #{self.channel})\n")
        elif word == "thread":
            self.thread = None if arg in ("", "off", "none") else arg
            self._write(f"(now in #{self.channel}{' / ' + self.thread if self.thread else ''})\n")
        elif word == "mod" and arg in ("on", "off"):
            self.moderator = arg == "on"
            self._write(f"(moderator: {arg})\n")
        elif word == "who" and arg:
            self.author = arg
            self._write(f"(you are now {arg})\n")
        elif word == "group" and arg in ("on", "off"):
            self.group = arg == "on"
            self._write(f"(a {'group channel' if self.group else 'direct chat'})\n")
        else:
            self._write(CONSOLE_HELP + "\n")
        return True

    def prompt(self) -> str:
        role = " (mod)" if self.moderator else ""
        where = f"#{self.channel}" + (f"/{self.thread}" if self.thread else "")
        return f"{self.author}{role} {where}> "

    async def run(self, lines: TextIO | None = None) -> None:
        """Read lines until end of input or ``:quit``."""
        source = lines if lines is not None else sys.stdin
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def read() -> None:  # a daemon thread, so a pending read never blocks exit
            for line in source:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=read, name="console-input", daemon=True).start()
        self._write(CONSOLE_HELP + "\n")
        while True:
            self._write(self.prompt())
            line = await queue.get()
            if line is None:
                self._write("\n")
                return
            line = line.strip()
            if not line:
                continue
            while line.count(FENCE) % 2:
                # A code block (a layer's TOML after /layer create) runs until it closes.
                more = await queue.get()
                if more is None:
                    queue.put_nowait(None)  # the end of input, once this line is handled
                    break
                line += "\n" + more.rstrip("\n")
            if line.startswith(":"):
                if not self.control(line):
                    return
                continue
            await self.say(line)
