"""The platform-neutral asyncio core of cabot."""
