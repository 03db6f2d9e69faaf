"""The command registry: each command declared once, everything else generated from it.

A :class:`CommandSpec` names a command (``("profile", "use")``), its arguments with their
kinds and choices, who may run it, a one-line description and its handler. From the
declarations come the text parser (``/profile use kids --community``), ``/help``, the
README's command table, and — in the adapters — Discord's slash commands and Telegram's
command menu. Adapters that receive typed options hand the core a :class:`Command`
directly; text is parsed here, once.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from bot.errors import CommandError
from bot.messages import ArgValue, Command
from profiles.library import suggest

if TYPE_CHECKING:
    from bot.commands.context import CommandContext, CommandReply


class ArgKind(Enum):
    """What an argument holds; adapters turn kinds into typed options and completions."""

    WORD = "word"
    """A free word, e.g. a new profile's name."""
    PROFILE = "profile"
    """A profile name (completed from the community's profiles)."""
    LAYER = "layer"
    """A layer name (completed from the community's layers)."""
    CHOICE = "choice"
    """One of a fixed set of values."""
    SCOPE = "scope"
    """Where a change applies: ``--channel``, ``--thread`` or ``--community``."""
    TEXT = "text"
    """Free text: the rest of the message as typed, line breaks and all (a layer's TOML,
    a message to preview). It comes last; words before it are the other arguments."""
    FILE = "file"
    """A file attached to the command (its content is in ``IncomingMessage.attachments``;
    the argument holds its name when the platform names it, e.g. a Discord option)."""
    STACK = "stack"
    """A profile name or layer names (completed from both)."""


class Permission(Enum):
    """Who may run a command; checked by the core when the command runs."""

    ANYONE = "anyone"
    MODERATOR = "moderators"
    """Moderators of the place the change applies to (the scope argument's level)."""
    COMMUNITY_MODERATOR = "community moderators"


@dataclass(frozen=True)
class Choice:
    """A fixed value of a ``CHOICE`` argument and how to label it."""

    value: str
    label: str


@dataclass(frozen=True)
class Argument:
    """One argument of a command.

    Attributes:
        name: the name (a Discord option name: lowercase, no spaces).
        kind: what it holds.
        description: one line for menus and slash-command options.
        required: whether it must be given.
        many: takes every remaining word (e.g. a layer stack).
        choices: the allowed values of a ``CHOICE`` argument.
        metavar: how usage lines name one value (default: ``name``).
    """

    name: str
    kind: ArgKind
    description: str
    required: bool = True
    many: bool = False
    choices: tuple[Choice, ...] = ()
    metavar: str | None = None

    def usage(self) -> str:
        """How ``/help`` shows it: ``<profile>``, ``[profile]``, ``always|addressed``."""
        if self.kind is ArgKind.SCOPE:
            return "[--channel|--community]"
        if self.kind is ArgKind.FILE:
            return f"[+ attached {self.metavar or self.name}]"
        if self.kind is ArgKind.CHOICE:
            text = "|".join(choice.value for choice in self.choices)
        elif self.many:
            one = self.metavar or self.name
            text = f"<{one}> [<{one}> ...]"
        else:
            text = f"<{self.metavar or self.name}>"
        if self.required:
            return text
        return f"[{text.strip('<>')}]" if not self.many else f"[{text}]"


SCOPE = Argument(
    "scope",
    ArgKind.SCOPE,
    "Where the change applies (default: here)",
    required=False,
    choices=(
        Choice("channel", "this channel (or thread)"),
        Choice("thread", "this thread only"),
        Choice("community", "the whole server or group"),
    ),
)
"""The scope option shared by every command that changes a place's alignment."""

SCOPE_WORDS = {"community": "community", "server": "community", "group": "community",
               "channel": "channel", "thread": "thread"}
DASHES = ("\u2014", "\u2013")  # phones turn "--" into an em or en dash


Handler = Callable[["CommandContext", "Command"], Awaitable["CommandReply"]]


@dataclass(frozen=True)
class CommandSpec:
    """One command, declared once.

    Attributes:
        path: the command's words, e.g. ``("profile", "use")`` or ``("forget",)``.
        description: one line, shown in ``/help``, slash commands and menus.
        handler: runs the command once its arguments are parsed and its permission checked.
        arguments: the arguments in the order they are typed.
        permission: who may run it.
        private: the answer concerns only whoever asked (ephemeral where possible).
    """

    path: tuple[str, ...]
    description: str
    handler: Handler
    arguments: tuple[Argument, ...] = ()
    permission: Permission = Permission.ANYONE
    private: bool = False

    @property
    def name(self) -> str:
        """The command as typed, without the slash: ``profile use``."""
        return " ".join(self.path)

    def usage(self) -> str:
        """``/profile use <profile> [--channel|--community]``."""
        return " ".join(["/" + self.name, *(arg.usage() for arg in self.arguments)])

    def argument(self, name: str) -> Argument:
        """The argument called ``name``."""
        for arg in self.arguments:
            if arg.name == name:
                return arg
        raise KeyError(name)


@dataclass(frozen=True)
class Group:
    """Commands sharing a first word (``/profile ...``) and the default when it stands alone."""

    name: str
    description: str
    default: str | None = None


class Registry:
    """Every command, looked up and parsed by name."""

    def __init__(self, specs: Sequence[CommandSpec], groups: Sequence[Group] = ()) -> None:
        self.specs: tuple[CommandSpec, ...] = tuple(specs)
        self.groups: dict[str, Group] = {group.name: group for group in groups}
        self._by_path = {spec.path: spec for spec in self.specs}
        if len(self._by_path) != len(self.specs):
            raise ValueError("two commands share a name")

    def __iter__(self) -> Iterator[CommandSpec]:
        return iter(self.specs)

    @property
    def top_level(self) -> tuple[str, ...]:
        """First words, in declaration order: ``("profile", "answer", ...)``."""
        return tuple(dict.fromkeys(spec.path[0] for spec in self.specs))

    def children(self, group: str) -> tuple[CommandSpec, ...]:
        """The commands of a group, in declaration order."""
        return tuple(spec for spec in self.specs if len(spec.path) > 1 and spec.path[0] == group)

    def spec(self, path: tuple[str, ...]) -> CommandSpec:
        """The declaration of ``path``."""
        return self._by_path[path]

    def is_command(self, text: str) -> bool:
        """Whether ``text`` starts with one of the registry's commands (``/help@cabot``)."""
        words = _split(text)
        return bool(words) and _name(words[0]) in self.top_level

    def parse(self, text: str) -> Command | None:
        """The command in ``text``; None when it is not one of ours.

        Raises:
            CommandError: a known command with an unknown subcommand or bad arguments.
        """
        words = _split(text)
        if not words or _name(words[0]) not in self.top_level:
            return None
        first, rest = _name(words[0]), words[1:]
        consumed = 1
        if (first,) in self._by_path:
            spec = self._by_path[(first,)]
        else:
            consumed += bool(rest)
            group = self.groups.get(first)
            children = self.children(first)
            sub = rest[0].lower() if rest else (group.default if group else None)
            rest = rest[1:]
            names = [child.path[1] for child in children]
            if sub not in names:
                hint = suggest(sub or "", names)
                raise CommandError(
                    f"Unknown /{first} subcommand {sub!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else ".")
                    + f" Try one of: {', '.join(names)}."
                )
            spec = self._by_path[(first, sub)]
        if any(arg.kind is ArgKind.TEXT for arg in spec.arguments):
            return Command(spec.path, parse_text_arguments(spec, _after_words(text, consumed)))
        return Command(spec.path, parse_arguments(spec, rest))

    def help_text(self) -> str:
        """The ``/help`` answer."""
        lines = ["cabot commands:"]
        for spec in self.specs:
            who = {Permission.ANYONE: "", Permission.MODERATOR: " (moderators)",
                   Permission.COMMUNITY_MODERATOR: " (community moderators)"}[spec.permission]
            lines.append(f"{spec.usage()} — {spec.description}{who}")
        return "\n".join(lines)

    def markdown_table(self) -> str:
        """The README's command table."""
        lines = ["| command | who | what |", "|---|---|---|"]
        for spec in self.specs:
            usage = spec.usage().replace("|", "\\|")
            lines.append(f"| `{usage}` | {spec.permission.value} | {spec.description} |")
        return "\n".join(lines)


def parse_arguments(spec: CommandSpec, words: Sequence[str]) -> dict[str, ArgValue]:
    """Assign typed words to ``spec``'s arguments; a scope flag may stand anywhere.

    Raises:
        CommandError: a missing, extra or invalid argument, with the command's usage.
    """
    values: dict[str, ArgValue] = {}
    positional: list[str] = []
    has_scope = any(arg.kind is ArgKind.SCOPE for arg in spec.arguments)
    for raw in words:
        word = "--" + raw[1:] if raw[:1] in DASHES else raw
        flag = word.lower().lstrip("-")
        if has_scope and (word.startswith("--") or flag in ("community", "server", "group")):
            if flag not in SCOPE_WORDS:
                raise CommandError(f"Unknown option {word!r}; use --channel or --community.")
            values["scope"] = SCOPE_WORDS[flag]
        elif word.startswith("--") and not has_scope:
            raise CommandError(f"/{spec.name} takes no option {word!r}. Usage: {spec.usage()}")
        else:
            positional.append(word)
    for arg in spec.arguments:
        if arg.kind in (ArgKind.SCOPE, ArgKind.FILE):
            continue
        if arg.many:
            values[arg.name] = tuple(positional) if positional else None
            positional = []
        elif positional:
            values[arg.name] = positional.pop(0)
        else:
            values[arg.name] = None
        value = values[arg.name]
        if value is None and arg.required:
            raise CommandError(f"Usage: {spec.usage()}")
        if arg.kind is ArgKind.CHOICE and isinstance(value, str):
            allowed = [choice.value for choice in arg.choices]
            if value.lower() not in allowed:
                raise CommandError(f"Usage: {spec.usage()}")
            values[arg.name] = value.lower()
    if positional:
        raise CommandError(f"Usage: {spec.usage()}")
    return values


SEPARATORS = ("--", *DASHES, "|")
"""A word that ends a list of names and starts the free text after it."""


def parse_text_arguments(spec: CommandSpec, text: str) -> dict[str, ArgValue]:
    """Assign ``text`` (what follows the command's words, as typed) to ``spec``'s arguments.

    Each argument before the free-text one takes one word; a many-word argument takes the
    words of the first line up to a separator word (``--`` or ``|``). The free text is
    the rest, stripped, with its line breaks and quotes as typed.

    Raises:
        CommandError: a required argument is missing.
    """
    values: dict[str, ArgValue] = {}
    rest = text
    for arg in spec.arguments:
        if arg.kind in (ArgKind.SCOPE, ArgKind.FILE):
            values[arg.name] = None
            continue
        if arg.kind is ArgKind.TEXT:
            values[arg.name] = rest.strip() or None
            rest = ""
        elif arg.many:
            line, newline, after = rest.partition("\n")
            words = line.split()
            cut = next((i for i, word in enumerate(words) if word in SEPARATORS), None)
            if cut is not None:
                rest = " ".join(words[cut + 1:]) + newline + after
                words = words[:cut]
            else:
                rest = after
            values[arg.name] = tuple(words) or None
        else:
            match = re.match(r"\s*(\S+)", rest)
            values[arg.name] = match.group(1) if match else None
            rest = rest[match.end():] if match else ""
        if values[arg.name] is None and arg.required:
            raise CommandError(f"Usage: {spec.usage()}")
    return values


def validate(spec: CommandSpec, command: Command) -> Command:
    """``command`` with its values checked against ``spec`` (for typed commands from adapters).

    Raises:
        CommandError: a required argument is missing or a choice is not allowed.
    """
    values: dict[str, ArgValue] = {}
    for arg in spec.arguments:
        value = command.args.get(arg.name)
        if isinstance(value, str) and arg.many:
            value = tuple(value.split()) or None
        if value is None and arg.required:
            raise CommandError(f"Usage: {spec.usage()}")
        if arg.choices and isinstance(value, str):
            if value.lower() not in [choice.value for choice in arg.choices]:
                raise CommandError(f"Usage: {spec.usage()}")
            value = value.lower()
        values[arg.name] = value
    return Command(spec.path, values)


def _after_words(text: str, count: int) -> str:
    """``text`` after its slash and first ``count`` words, as typed."""
    rest = text.strip()[1:]
    for _ in range(count):
        match = re.match(r"\s*\S+", rest)
        rest = rest[match.end():] if match else ""
    return rest


def _split(text: str) -> list[str]:
    stripped = text.strip()
    if not stripped.startswith("/") or len(stripped) < 2:
        return []
    try:
        return shlex.split(stripped[1:])
    except ValueError:
        return stripped[1:].split()


def _name(word: str) -> str:
    """``profile`` for ``profile@cabot_bot`` (Telegram adds the bot's name)."""
    return word.split("@", 1)[0].lower()
