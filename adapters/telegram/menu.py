"""Telegram's command menu (``setMyCommands``), generated from the core's command registry."""

from __future__ import annotations

from telegram import BotCommand

from bot.commands import Permission, Registry

MAX_DESCRIPTION = 256  # Telegram's limit for a BotCommand description


def bot_commands(registry: Registry) -> list[BotCommand]:
    """One menu entry per top-level command; a group lists its subcommands."""
    entries = []
    for name in registry.top_level:
        children = registry.children(name)
        if children:
            group = registry.groups.get(name)
            about = group.description if group else name
            text = f"{about}: {', '.join(child.path[1] for child in children)}"
        else:
            spec = registry.spec((name,))
            text = spec.description[:1].upper() + spec.description[1:]
            if spec.permission is not Permission.ANYONE:
                text += " (admins)"
        entries.append(BotCommand(name, text[:MAX_DESCRIPTION]))
    return entries
