"""Several inference servers as one pool: which server takes a job, and which are alive.

A job goes to the server with the fewest jobs in flight for its capacity (its slots),
except that a channel stays on the server it used last while that one is healthy and
has room, so the server's prompt cache still holds the channel's conversation. On a
llama.cpp server the channel also keeps its slot when that slot is free (``id_slot``).

A server that cannot be reached or breaks off is out until a health check finds it
answering; one that says it is busy (429, 503) gets no job until its ``Retry-After``
passes. A job that finds no server with room waits here, in arrival order, under the
queue's timeout and cancellation; when no server is alive at all it fails at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lru import LRU

from bot.backends.remote.client import ServerClient
from bot.errors import ServerUnavailableError

log = logging.getLogger(__name__)

Routing = Literal["affinity", "round-robin"]

REMEMBERED_CHANNELS = 16_384
"""Channels whose last server (and slot) the pool remembers."""
BUSY_DEFAULT = 1.0
"""Seconds a server that said it is busy, without saying for how long, gets no job."""
BUSY_MAX = 30.0


if TYPE_CHECKING:
    _Channels = LRU[str, "tuple[Server, int | None]"]
else:  # not subscriptable at run time
    _Channels = LRU


class _Affinity(_Channels):
    """Each channel's last server and slot, counting the channels each server holds."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize, self._evicted)
        self.held: Counter[Server] = Counter()

    def _evicted(self, _key: str, value: tuple[Server, int | None]) -> None:
        self.held[value[0]] -= 1

    def __setitem__(self, key: str, value: tuple[Server, int | None]) -> None:
        old = self.get(key)
        if old is not None:
            self.held[old[0]] -= 1
        super().__setitem__(key, value)
        self.held[value[0]] += 1

    def __delitem__(self, key: str) -> None:
        old = self.get(key)
        super().__delitem__(key)
        if old is not None:
            self.held[old[0]] -= 1


@dataclass(eq=False)
class Server:
    """One server of the pool and what cabot knows of it."""

    client: ServerClient
    capacity: int
    n_ctx: int | None = None
    alive: bool | None = None
    """None until the first probe or job says."""
    busy_until: float = 0.0
    in_flight: int = 0
    slots_in_use: set[int] = field(default_factory=set)

    @property
    def label(self) -> str:
        return self.client.label

    def has_room(self, now: float) -> bool:
        return self.alive is not False and now >= self.busy_until and (
            self.in_flight < self.capacity)


@dataclass(eq=False)
class Lease:
    """A job's hold on one server (and slot) until ``ServerPool.release``."""

    server: Server
    slot: int | None
    session: str | None
    released: bool = False


class ServerPool:
    """Leases servers to jobs.

    Args:
        servers: the servers, in the order they were configured.
        routing: ``affinity`` (a channel returns to its server) or ``round-robin``
            (each job to the next server with room: the baseline the benchmark compares).
        clock: seconds, for busy periods.
    """

    def __init__(self, servers: list[Server], *, routing: Routing = "affinity",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.servers = servers
        self.routing = routing
        self._clock = clock
        self._changed = asyncio.Event()
        self._waiting = 0
        self._affinity = _Affinity(REMEMBERED_CHANNELS)
        self._turn = itertools.count()

    @property
    def capacity(self) -> int:
        """Jobs the pool can run at once: the slots of every server not known to be down."""
        return max(1, sum(s.capacity for s in self.servers if s.alive is not False))

    def alive(self, exclude: Collection[Server] = ()) -> list[Server]:
        return [s for s in self.servers if s.alive is not False and s not in exclude]

    async def lease(self, session: str | None, exclude: Collection[Server] = ()) -> Lease:
        """A server with room for one job, waiting in turn for one to free up.

        Raises:
            ServerUnavailableError: no server (other than ``exclude``) is alive.
        """
        first = True
        while True:
            if not self.alive(exclude):
                raise ServerUnavailableError(self._none_alive(exclude))
            # A job that arrives while others wait queues behind them.
            server = self._pick(session, exclude) if not (first and self._waiting) else None
            if server is not None:
                return self._grant(server, session)
            first = False
            self._waiting += 1
            try:
                await self._wait_for_change()
            finally:
                self._waiting -= 1

    def try_lease(self, server: Server) -> Lease | None:
        """``server`` for a short request of cabot's own, if it is idle now (else None)."""
        if server.in_flight or not server.has_room(self._clock()):
            return None
        return self._grant(server, None, keep_slot=False)

    def release(self, lease: Lease) -> None:
        """Give the lease back (once; later calls do nothing)."""
        if lease.released:
            return
        lease.released = True
        lease.server.in_flight -= 1
        if lease.slot is not None:
            lease.server.slots_in_use.discard(lease.slot)
        self._notify()

    # -- what happened --------------------------------------------------------------

    def mark_down(self, server: Server, why: str) -> None:
        """``server`` failed: no jobs until a health check finds it answering."""
        if server.alive is not False:
            log.warning("%s is out of the pool: %s", server.label, why)
        server.alive = False
        for session, (kept, _slot) in list(self._affinity.items()):
            if kept is server:
                del self._affinity[session]
        self._notify()

    def mark_up(self, server: Server, *, slots: int | None = None,
                n_ctx: int | None = None) -> None:
        """``server`` answered a probe (with its slots and context, where it tells them)."""
        if server.alive is False:
            log.info("%s is back in the pool", server.label)
        server.alive = True
        if slots is not None:
            server.capacity = slots
        if n_ctx is not None:
            server.n_ctx = n_ctx
        self._notify()

    def mark_busy(self, server: Server, retry_after: float | None) -> None:
        """``server`` said it is busy: no job for ``retry_after`` seconds (or a second)."""
        wait = min(BUSY_MAX, BUSY_DEFAULT if retry_after is None else retry_after)
        server.busy_until = max(server.busy_until, self._clock() + wait)
        log.info("%s is busy; no new job there for %.1f s", server.label, wait)
        self._notify()

    # -- choosing ---------------------------------------------------------------------

    def _pick(self, session: str | None, exclude: Collection[Server]) -> Server | None:
        now = self._clock()
        free = [s for s in self.servers if s.has_room(now) and s not in exclude]
        if not free:
            return None
        if self.routing == "round-robin":
            turn = next(self._turn)
            return free[turn % len(free)]
        if session is not None:
            kept = self._affinity.get(session)
            if kept is not None and kept[0] in free:
                return kept[0]
        # The least loaded; between equals, the one whose cache holds the fewest channels.
        return min(free, key=lambda s: (s.in_flight / s.capacity, s.in_flight,
                                        self._affinity.held[s], self.servers.index(s)))

    def _grant(self, server: Server, session: str | None, *, keep_slot: bool = True) -> Lease:
        server.in_flight += 1
        slot = None
        if keep_slot and server.client.kind == "llama-server" and server.capacity > 1:
            slot = self._slot_for(server, session)
            if slot is not None:
                server.slots_in_use.add(slot)
        if session is not None and keep_slot:
            self._affinity[session] = (server, slot)
        return Lease(server, slot, session)

    def _slot_for(self, server: Server, session: str | None) -> int | None:
        """The channel's slot on ``server`` if it is free, else a free slot no channel
        used last; None lets the server choose (it picks the most similar prompt)."""
        kept = self._affinity.get(session) if session is not None else None
        if kept is not None and kept[0] is server and kept[1] is not None and (
                kept[1] not in server.slots_in_use):
            return kept[1]
        claimed = {slot for kept_server, slot in self._affinity.values()
                   if kept_server is server and slot is not None}
        for slot in range(server.capacity):
            if slot not in server.slots_in_use and slot not in claimed:
                return slot
        return None

    async def _wait_for_change(self) -> None:
        """Until a lease is released or a server changes, or the nearest busy period ends.

        Waiters wake in the order they began to wait, so the first one gets the first room.
        """
        now = self._clock()
        ends = [s.busy_until - now for s in self.servers if s.busy_until > now]
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout=min(ends) if ends else None)
        except TimeoutError:
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _none_alive(self, exclude: Collection[Server]) -> str:
        count = len(self.servers)
        if any(s.alive is not False for s in exclude):
            return ("The inference servers that could take this reply failed; try again "
                    "in a moment.")
        return (f"No inference server is answering ({count} configured); the operator "
                "should check them. Try again in a moment.")
