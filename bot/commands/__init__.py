"""Platform-neutral commands: declared once in a registry, parsed, checked and run by the core.

    registry.py   the declaration types, the text parser, /help and the README table
    catalog.py    cabot's commands, each declared once
    handlers.py   what each command does
    render.py     how stacks, plans and lists are shown
    runner.py     permission checks and dispatch
"""

from bot.commands.catalog import build_registry
from bot.commands.context import CommandContext, CommandReply
from bot.commands.registry import ArgKind, Argument, CommandSpec, Permission, Registry
from bot.commands.render import explain_plan
from bot.commands.runner import CommandRunner
from bot.messages import Command

__all__ = [
    "ArgKind",
    "Argument",
    "Command",
    "CommandContext",
    "CommandReply",
    "CommandRunner",
    "CommandSpec",
    "Permission",
    "Registry",
    "build_registry",
    "explain_plan",
]
