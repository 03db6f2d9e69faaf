"""Who may run a command, and at which level it applies; checked when it runs."""

from __future__ import annotations

from bot.commands.registry import ArgKind, CommandSpec, Permission
from bot.errors import PermissionDeniedError
from bot.messages import Command, IncomingMessage
from bot.store import Level


def check_permission(spec: CommandSpec, command: Command, message: IncomingMessage) -> Level:
    """The level ``command`` changes, once the author may change it.

    Raises:
        PermissionDeniedError: the author does not moderate that level, saying who does.
    """
    level = command_level(spec, command, message)
    if spec.permission is Permission.ANYONE:
        return level
    if spec.permission is Permission.COMMUNITY_MODERATOR or level == "community":
        if not message.moderates_community:
            raise PermissionDeniedError(
                "Only community moderators (who can manage the server or group) can change "
                "the community's profile. Ask one of them."
            )
    elif not (message.moderates_channel or message.moderates_community):
        raise PermissionDeniedError(
            "Only moderators (who can manage this channel) can change its profile. "
            "Ask one of them; anyone can use /profile show and /profile explain."
        )
    return level


def command_level(spec: CommandSpec, command: Command, message: IncomingMessage) -> Level:
    """Where a command applies: its scope argument, else the place it was sent from."""
    if spec.permission is Permission.COMMUNITY_MODERATOR:
        return "community"
    here: Level = "thread" if message.scope.thread is not None else "channel"
    scope = command.word("scope") if any(a.kind is ArgKind.SCOPE for a in spec.arguments) else None
    if scope == "community":
        return "community"
    if scope == "thread" and message.scope.thread is not None:
        return "thread"
    if scope == "channel":
        return "channel"
    return here
