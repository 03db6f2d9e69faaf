"""Runs commands: parse or accept a typed command, check who may run it, call its handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.automod import AutoModSource
from bot.backends.base import LOCAL_SAMPLING, SamplingRule
from bot.budgets import Budgets
from bot.commands.catalog import build_registry
from bot.commands.context import CommandContext, CommandReply
from bot.commands.permissions import check_permission
from bot.commands.registry import Registry, validate
from bot.errors import CabotError
from bot.messages import Command, IncomingMessage
from bot.preview import Previewer
from bot.probes import ProbeRunner
from bot.reply import ChatLimits
from bot.resolution import ProfileResolver
from bot.store import Store
from bot.why import ReplyReports

log = logging.getLogger(__name__)


class CommandRunner:
    """Runs every declared command against the store and the profile resolver."""

    def __init__(
        self,
        store: Store,
        resolver: ProfileResolver,
        registry: Registry | None = None,
        enforces: frozenset[SamplingRule] = LOCAL_SAMPLING,
        reports: ReplyReports | None = None,
        budgets: Budgets | None = None,
        previewer: Previewer | None = None,
        probes: ProbeRunner | None = None,
        limits: ChatLimits | None = None,
    ) -> None:
        self._limits = limits
        self._previewer = previewer
        self._probes = probes
        self._store = store
        self._budgets = budgets
        self._reports = reports if reports is not None else ReplyReports()
        self._resolver = resolver
        self._enforces = enforces
        self.registry = registry if registry is not None else build_registry()
        self._help = self.registry.help_text()

    def command_in(self, message: IncomingMessage) -> Command | CommandReply | None:
        """The message's command; a reply when it is one of ours with bad arguments."""
        if message.command is not None:
            return message.command
        try:
            return self.registry.parse(message.text)
        except CabotError as error:
            return CommandReply(str(error), ephemeral=True)

    async def run(
        self,
        message: IncomingMessage,
        command: Command,
        notify: Callable[[CommandReply], Awaitable[None]] | None = None,
        automod: AutoModSource | None = None,
    ) -> CommandReply:
        """Run one command; user mistakes become a reply, never an exception.

        ``notify`` posts notices before the answer; ``automod`` reads the platform's
        AutoMod rules, where it has them.
        """
        try:
            spec = self.registry.spec(command.path)
        except KeyError:
            return CommandReply(f"Unknown command /{' '.join(command.path)}; see /help.", True)
        try:
            command = validate(spec, command)
            level = check_permission(spec, command, message)
            context = CommandContext(
                message, self._store, self._resolver, level, self._help, self._enforces,
                self._reports, self._budgets, previewer=self._previewer,
                probes=self._probes, notify=notify, automod=automod, limits=self._limits,
            )
            return await spec.handler(context, command)
        except CabotError as error:
            return CommandReply(str(error), ephemeral=True)
