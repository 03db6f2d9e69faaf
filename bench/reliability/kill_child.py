"""A cabot store under constant change, for the kill test: switch profiles, remember.

Run as ``python -m bench.reliability.kill_child DB``. Each committed change is printed
(``bind N PROFILE`` or ``memory N``) only after its transaction returned, so the parent
knows what must have survived a ``kill -9``.
"""

from __future__ import annotations

import asyncio
import sys

from bot.messages import Scope
from bot.store import Actor, Store

PROFILES = ("kids", "storyteller", "researcher")
SCOPE = Scope(platform="bench", community="kill", channel="general")
ACTOR = Actor(id="bench", name="bench")


async def churn(path: str) -> None:
    async with Store(path) as store:
        step = 0
        while True:
            step += 1
            profile = PROFILES[step % len(PROFILES)]
            print(f"binding {step} {profile}", flush=True)
            await store.alignment.bind(SCOPE, "channel", ACTOR, profile=profile)
            print(f"bind {step} {profile}", flush=True)
            await store.conversations.append_exchange(
                SCOPE, [("user", f"question {step}"), ("assistant", f"answer {step}")], 40
            )
            print(f"memory {step}", flush=True)


if __name__ == "__main__":
    asyncio.run(churn(sys.argv[1]))
