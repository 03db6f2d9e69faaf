"""The seam through which a platform hands the core its AutoMod rules (Discord has them).

An adapter that can read its platform's AutoMod rules implements :class:`AutoModSource`;
``/profile automod`` (``bot.commands.automod``) turns them into a community layer
(``profiles.automod``). Adapters of platforms without AutoMod simply do not implement it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.messages import IncomingMessage
from profiles.automod import AutoModRule


@runtime_checkable
class AutoModSource(Protocol):
    """Reads the AutoMod rules of the community a message came from."""

    async def automod_rules(self, message: IncomingMessage) -> tuple[AutoModRule, ...]:
        """Every AutoMod rule of ``message``'s community.

        Raises:
            ForbiddenError: the bot may not read them (it lacks the permission).
            AdapterError: the platform refused otherwise, or the place has no AutoMod.
        """
        ...
