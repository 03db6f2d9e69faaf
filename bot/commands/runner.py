"""Runs commands: parse or accept a typed command, check who may run it, call its handler."""

from __future__ import annotations

import logging

from bot.backends.base import LOCAL_SAMPLING, SamplingRule
from bot.budgets import Budgets
from bot.commands.catalog import build_registry
from bot.commands.context import CommandContext, CommandReply
from bot.commands.registry import Registry, check_permission, validate
from bot.errors import CabotError
from bot.messages import Command, IncomingMessage
from bot.preview import Previewer
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
    ) -> None:
        self._previewer = previewer
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

    async def run(self, message: IncomingMessage, command: Command) -> CommandReply:
        """Run one command; user mistakes become a reply, never an exception."""
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
            )
            return await spec.handler(context, command)
        except CabotError as error:
            return CommandReply(str(error), ephemeral=True)
