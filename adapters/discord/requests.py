"""Requests to Discord: answering interactions, and translating Discord's errors.

Discord errors become cabot's ``AdapterError`` subclasses here, with a sentence a
moderator can act on; none of them contains the bot token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import discord
from cachetools import TLRUCache

from adapters.discord.client import no_pings
from adapters.discord.commands import Interaction
from bot.errors import AdapterError, ForbiddenError, MessageGoneError, PlatformRateLimitError

T = TypeVar("T")

BLOCKED_CHANNELS = 1024
"""Channels whose long 429 is remembered at most (each until it has passed)."""


class InteractionReply:
    """Answers one slash-command interaction in place.

    The interaction is deferred the moment it arrives (Discord drops it after 3 s),
    visible only to the invoker when the answer is likely private. The first answer then
    fills that deferred message when its visibility matches, or replaces it otherwise
    (a refusal of a public command stays private); later answers are follow-ups.
    """

    def __init__(self, interaction: Interaction, private: bool) -> None:
        self.interaction = interaction
        self.private = private
        self._original_used = False
        self._lock = asyncio.Lock()

    async def acknowledge(self) -> None:
        """Defer: Discord shows 'cabot is thinking…' until the answer arrives."""
        await self.interaction.response.defer(ephemeral=self.private, thinking=True)

    async def send(self, text: str, ephemeral: bool) -> discord.Message:
        """Show ``text`` to the invoker (``ephemeral``) or to the channel."""
        async with self._lock:
            if not self._original_used:
                self._original_used = True
                if ephemeral == self.private:
                    return await self.interaction.edit_original_response(
                        content=text, allowed_mentions=no_pings()
                    )
                try:
                    await self.interaction.delete_original_response()
                except discord.NotFound:
                    pass  # the invoker already dismissed it; the follow-up still reaches them
            return await self.interaction.followup.send(
                text, ephemeral=ephemeral, allowed_mentions=no_pings(), wait=True
            )


class RequestGate:
    """Awaits discord.py requests, translating their errors into cabot's.

    It also remembers, per channel, a 429 that asked to wait longer than cabot accepts,
    and refuses further posts there until it has passed: retrying sooner only collects
    more 429s, and Discord bans clients that pile up invalid requests.

    Args:
        deadline: the longest an interaction answer may take (discord.py's webhook
            client waits out any 429, however long).
        clock: monotonic seconds.
    """

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._deadline = deadline
        self._clock = clock
        # channel id -> when its block ends; an entry is dropped once that time has passed.
        self._blocked: TLRUCache[int, float] = TLRUCache(
            maxsize=BLOCKED_CHANNELS, ttu=_blocked_until, timer=clock
        )

    def check(self, channel_id: int, where: str, pending: Awaitable[Any] | None = None
              ) -> None:
        """Raise PlatformRateLimitError while ``channel_id`` is blocked (closing ``pending``)."""
        until = self._blocked.get(channel_id)
        if until is None or (left := until - self._clock()) <= 0:
            return
        if isinstance(pending, Coroutine):
            pending.close()
        raise PlatformRateLimitError(
            f"Discord asked cabot to wait {left:.0f} s more before posting in {where}.", left
        )

    async def bounded(self, request: Awaitable[T]) -> T:
        """``request`` with the interaction deadline."""
        async with asyncio.timeout(self._deadline):
            return await request

    async def call(self, request: Awaitable[T], where: str, *, editing: bool = False,
                   channel_id: int | None = None) -> T:
        """Await ``request`` (a post or edit in ``where``), translating Discord's errors."""
        try:
            return await request
        except discord.RateLimited as error:
            if channel_id is not None:
                self._blocked[channel_id] = self._clock() + error.retry_after
            raise PlatformRateLimitError(
                f"Discord asked cabot to wait {error.retry_after:.0f} s before posting in "
                f"{where}; the message was dropped rather than held that long.",
                error.retry_after,
            ) from None
        except discord.Forbidden as error:
            raise ForbiddenError(
                f"cabot may not post in {where} (Discord: {error.text or error.status}); give "
                "its role View Channel, Send Messages and Send Messages in Threads there."
            ) from None
        except discord.NotFound as error:
            if editing:
                raise MessageGoneError(
                    f"A reply in {where} was deleted while cabot was writing it."
                ) from None
            raise AdapterError(
                f"Discord no longer knows this place ({where}): {error.text}"
            ) from None
        except discord.HTTPException as error:
            raise AdapterError(
                f"Discord refused a request in {where}: {error.status} {error.text}"
            ) from None
        except aiohttp.ClientError as error:
            raise _unreachable(error) from None
        except TimeoutError:  # the interaction deadline
            raise PlatformRateLimitError(
                f"Discord did not take cabot's answer in {where} within "
                f"{self._deadline:.0f} s; it was dropped.", self._deadline,
            ) from None
        except OSError as error:
            raise _unreachable(error) from None


def _blocked_until(_channel_id: int, until: float, _now: float) -> float:
    return until


def _unreachable(error: BaseException) -> AdapterError:
    return AdapterError(
        f"Cannot reach Discord ({type(error).__name__}); check the network and "
        "CABOT_DISCORD_API_URL."
    )
