"""The shared inference queue: one for all adapters, fair across channels, bounded.

Scheduling is round-robin between channels: the next job comes from the channel whose
last job started longest ago (a channel never served goes first), so a channel with
20 pending requests delays another channel's single request by at most one job. Inside a
channel it is round-robin between users the same way, so one member's burst delays
another member of the same channel by at most one job. A channel runs one job at a time,
so its replies are generated, and remembered, one after another. Time
comes from an injected ``clock`` and ``sleep`` (rate limits and job timeouts alike), so
tests need no wall-clock waits.

Background jobs (``priority="low"``: summaries of long conversations) wait apart, first
come first served, and start only when no normal job is waiting at all; they take no part
in the rate limits, the bounds or the positions of normal jobs.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from lru import LRU

from bot.backends.base import Backend, GenerationRequest
from bot.deadline import Deadline
from bot.errors import (
    InferenceError,
    JobCancelledError,
    JobTimeoutError,
    QueueFullError,
    RateLimitedError,
)

log = logging.getLogger(__name__)

Priority = Literal["normal", "low"]
"""``low``: a background job, started only when no normal job waits."""

SERVED_USERS = 65_536
"""(channel, user) pairs whose last service is remembered for fairness inside a channel."""


@dataclass(frozen=True)
class JobEvent:
    """Something that happened to a job: a queue position, a text piece, the end or an error."""

    kind: Literal["position", "text", "done", "error"]
    position: int = 0
    text: str = ""
    error: InferenceError | None = None


class Job:
    """One generation request travelling through the queue."""

    _ids = itertools.count(1)

    def __init__(self, request: GenerationRequest, channel: str, user: str,
                 priority: Priority = "normal") -> None:
        self.id = next(self._ids)
        self.request = request
        self.channel = channel
        self.user = user
        self.priority = priority
        self.started = False
        self.finished = False
        # Events wait in a deque for one reader woken through a future: an asyncio.Queue
        # would cost a queue, its getters and a wake-up helper for every reply.
        self._events: deque[JobEvent] = deque()
        self._reader: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: InferenceQueue | None = None
        self._last_position = -1

    def _emit(self, event: JobEvent) -> None:
        if event.kind == "position":
            if event.position == self._last_position:
                return
            self._last_position = event.position
        if event.kind in ("done", "error"):
            if self.finished:
                return
            self.finished = True
        self._events.append(event)
        reader = self._reader
        if reader is not None and not reader.done():
            reader.set_result(None)

    async def events(self) -> AsyncIterator[JobEvent]:
        """Positions while waiting, text while running, then one ``done`` or ``error``."""
        events = self._events
        while True:
            while not events:
                reader = asyncio.get_running_loop().create_future()
                self._reader = reader
                try:
                    await reader
                finally:
                    self._reader = None
            event = events.popleft()
            yield event
            if event.kind in ("done", "error"):
                return

    def cancel(self) -> None:
        """Stop the job: drop it if waiting, stop generating if running."""
        if self.finished:
            return
        if self._queue is not None:
            self._queue._cancel(self)


class InferenceQueue:
    """Runs jobs on a backend, at most ``backend.max_parallel`` at a time."""

    def __init__(
        self,
        backend: Backend,
        *,
        max_pending: int = 64,
        max_per_channel: int = 8,
        user_rate: int = 6,
        user_window: float = 60.0,
        job_timeout: float = 180.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._backend = backend
        self._max_pending = max_pending
        self._max_per_channel = max_per_channel
        self._user_rate = user_rate
        self._user_window = user_window
        self._job_timeout = job_timeout
        self._clock = clock
        self._sleep = sleep
        self._pending: dict[str, deque[Job]] = {}
        self._background: deque[Job] = deque()
        self._last_served: dict[str, int] = {}
        self._user_served: LRU[tuple[str, str], int] = LRU(SERVED_USERS)
        self._serial = itertools.count()
        self._user_times: dict[str, deque[float]] = {}
        self._running: dict[Job, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    # -- public -------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return sum(map(len, self._pending.values()))

    @property
    def running_count(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        """Start scheduling."""
        self._scheduler = asyncio.create_task(self._schedule(), name="cabot-queue")
        self._scheduler.add_done_callback(_report_crash)

    async def stop(self) -> None:
        """Cancel every job and stop scheduling."""
        for jobs in self._pending.values():
            for job in jobs:
                job._emit(JobEvent("error", error=JobCancelledError("cabot is shutting down.")))
        self._pending.clear()
        for job in self._background:
            job._emit(JobEvent("error", error=JobCancelledError("cabot is shutting down.")))
        self._background.clear()
        for job, task in list(self._running.items()):
            job._emit(JobEvent("error", error=JobCancelledError(
                "cabot is shutting down; the reply was stopped.")))
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
            self._scheduler = None

    def submit(self, request: GenerationRequest, channel: str, user: str,
               priority: Priority = "normal") -> Job:
        """Queue a job (``priority="low"``: in the background, see the module docstring).

        Raises:
            RateLimitedError: ``user`` sent too many requests recently.
            QueueFullError: the queue, or this channel's share of it, is full.
        """
        if priority == "low":
            return self._submit_background(request, channel, user)
        now = self._clock()
        times = self._user_times.setdefault(user, deque())
        while times and now - times[0] >= self._user_window:
            times.popleft()
        if not times and len(self._user_times) > 10_000:
            self._user_times = {u: t for u, t in self._user_times.items() if t}
            times = self._user_times.setdefault(user, deque())
        if len(times) >= self._user_rate:
            wait = self._user_window - (now - times[0])
            raise RateLimitedError(
                f"You're sending requests too fast; try again in {max(1, round(wait))} s."
            )
        waiting_here = len(self._pending.get(channel, ()))
        if waiting_here >= self._max_per_channel:
            raise QueueFullError(
                f"This channel already has {waiting_here} "
                f"request{'s' if waiting_here != 1 else ''} waiting; busy, try again shortly."
            )
        if self.pending_count >= self._max_pending:
            raise QueueFullError("I'm busy with many requests right now; try again shortly.")
        times.append(now)
        job = Job(request, channel, user)
        job._queue = self
        self._pending.setdefault(channel, deque()).append(job)
        self._publish_positions()
        self._wake.set()
        return job

    def _submit_background(self, request: GenerationRequest, channel: str, user: str) -> Job:
        if len(self._background) >= self._max_pending:
            raise QueueFullError("Too many background jobs are waiting; try again later.")
        job = Job(request, channel, user, "low")
        job._queue = self
        self._background.append(job)
        self._wake.set()
        return job

    # -- scheduling -----------------------------------------------------------------

    def _order(self) -> list[Job]:
        """Waiting jobs in the order they will start (a simulation of the round-robin)."""
        queues = {channel: self._channel_order(channel, jobs)
                  for channel, jobs in self._pending.items() if jobs}
        # Only the waiting channels' turns matter: copying every channel ever served would
        # cost as much as there are places, on every submit and start. A channel served
        # goes behind every other, so the channels take turns in the order of their first:
        # least recently served first, then the oldest waiting job.
        served = self._last_served
        channels = sorted(queues, key=lambda c: (served.get(c, -1), queues[c][0].id))
        if all(len(queues[c]) == 1 for c in channels):
            return [queues[c][0] for c in channels]
        order: list[Job] = []
        for round_ in range(max(len(jobs) for jobs in queues.values())):
            order.extend(queues[c][round_] for c in channels if round_ < len(queues[c]))
        return order

    def _channel_order(self, channel: str, jobs: deque[Job]) -> list[Job]:
        """One channel's jobs, round-robin between its users (least recently served first)."""
        if len(jobs) == 1:
            return [jobs[0]]
        by_user: dict[str, list[Job]] = {}
        for job in jobs:
            by_user.setdefault(job.user, []).append(job)
        if len(by_user) == 1:
            return list(jobs)
        users = sorted(by_user, key=lambda u: (self._user_served.get((channel, u), -1),
                                               by_user[u][0].id))
        order: list[Job] = []
        for round_ in range(max(len(queued) for queued in by_user.values())):
            order.extend(by_user[u][round_] for u in users if round_ < len(by_user[u]))
        return order

    def _publish_positions(self) -> None:
        """Tell each waiting job how many jobs start before it (1 = next)."""
        free = self._free_slots()
        busy = self._busy_channels()
        if (len(self._pending) <= free and busy.isdisjoint(self._pending)
                and all(len(jobs) == 1 for jobs in self._pending.values())):
            return  # every waiting job starts now: none has a place in line
        ahead = 0
        for job in self._order():
            if free and job.channel not in busy:
                free -= 1  # it starts now
                busy.add(job.channel)
                continue
            ahead += 1
            job._emit(JobEvent("position", position=ahead))

    def _busy_channels(self) -> set[str]:
        return {job.channel for job in self._running}

    def _startable(self) -> list[Job]:
        """The jobs to start now, in round-robin order, one per channel not running one and
        at most one per free slot; background jobs only when no normal job waits."""
        free = self._free_slots()
        busy = self._busy_channels()
        jobs: list[Job] = []
        for job in self._order() if self._pending else self._background:
            if len(jobs) >= free:
                break
            if job.channel not in busy:
                busy.add(job.channel)
                jobs.append(job)
        return jobs

    def _free_slots(self) -> int:
        return max(0, self._backend.max_parallel - len(self._running))

    async def _schedule(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Starting a job changes only its own channel's turn, so the order computed
            # once holds for every job started in this pass.
            started = False
            while jobs := self._startable():
                for job in jobs:
                    self._start(job)
                started = True
            if started:
                self._publish_positions()

    def _start(self, job: Job) -> None:
        if job.priority == "low":
            self._background.remove(job)
        else:
            queue = self._pending[job.channel]
            queue.remove(job)
            if not queue:
                del self._pending[job.channel]
            self._last_served[job.channel] = next(self._serial)
            self._user_served[(job.channel, job.user)] = self._last_served[job.channel]
        job.started = True
        task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
        self._running[job] = task
        # A done-callback, not a finally in _run: a task cancelled before its first step
        # never runs its body, and its slot must still be freed.
        task.add_done_callback(functools.partial(self._finished, job))

    def _finished(self, job: Job, task: asyncio.Task[None]) -> None:
        self._running.pop(job, None)
        if not job.finished:
            job._emit(JobEvent("error", error=JobCancelledError("The request was cancelled.")))
        self._wake.set()

    async def _run(self, job: Job) -> None:
        try:
            async with Deadline(self._job_timeout, self._sleep):
                stream = self._backend.generate(job.request)
                try:
                    async for piece in stream:
                        job._emit(JobEvent("text", text=piece))
                finally:
                    await stream.aclose()
            job._emit(JobEvent("done"))
        except TimeoutError:
            job._emit(JobEvent("error", error=JobTimeoutError(
                f"The reply took longer than {self._job_timeout:g} s and was stopped; "
                "ask for something shorter or try again later."
            )))
        except asyncio.CancelledError:
            job._emit(JobEvent("error", error=JobCancelledError("The request was cancelled.")))
        except InferenceError as error:
            job._emit(JobEvent("error", error=error))
        except Exception as error:  # a failed job must never stop the queue
            log.exception("job %d failed", job.id)
            job._emit(JobEvent("error", error=InferenceError(
                f"The model failed while generating ({type(error).__name__}); try again."
            )))

    def _cancel(self, job: Job) -> None:
        if job in self._background:
            self._background.remove(job)
            job._emit(JobEvent("error", error=JobCancelledError("The request was cancelled.")))
            return
        queue = self._pending.get(job.channel)
        if queue is not None and job in queue:
            queue.remove(job)
            if not queue:
                del self._pending[job.channel]
            job._emit(JobEvent("error", error=JobCancelledError("The request was cancelled.")))
            self._publish_positions()
            return
        task = self._running.get(job)
        if task is not None:
            task.cancel()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.critical("the inference queue stopped", exc_info=task.exception())
