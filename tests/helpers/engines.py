"""Reading a real engine's reply in the model tests."""

from __future__ import annotations

import asyncio

from bot.backends.base import Backend, GenerationRequest

LIMIT = 300.0
"""Seconds a reply may take; only so that a hang fails instead of blocking the suite."""


async def reply(backend: Backend, request: GenerationRequest) -> str:
    """The whole text ``backend`` generates for ``request``."""
    async with asyncio.timeout(LIMIT):
        return "".join([piece async for piece in backend.generate(request)])
