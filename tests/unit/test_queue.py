"""The shared inference queue: fairness, bounds, rate limit, timeout, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from bot.backends.base import ChatMessage, GenerationRequest
from bot.errors import (
    InferenceError,
    JobCancelledError,
    JobTimeoutError,
    QueueFullError,
    RateLimitedError,
)
from bot.queue import InferenceQueue, Job
from tests.helpers.clock import FakeClock
from tests.helpers.fake_backend import FakeBackend


def request(text: str = "hi") -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", text),))


async def collect(job: Job) -> tuple[str, InferenceError | None, list[int]]:
    text, positions = "", []
    async for event in job.events():
        if event.kind == "text":
            text += event.text
        elif event.kind == "position":
            positions.append(event.position)
        elif event.kind == "error":
            return text, event.error, positions
    return text, None, positions


async def settle() -> None:
    """Give every ready task a turn: for checking that something did *not* happen."""
    for _ in range(20):
        await asyncio.sleep(0)


def started(backend: FakeBackend, jobs: list[Job]) -> list[Job]:
    """``jobs`` in the order the backend started them."""
    return [next(j for j in jobs if j.request is r) for r in backend.requests]


async def test_a_flooding_channel_delays_another_by_at_most_one_job() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, max_pending=100, max_per_channel=50, user_rate=100)
    await queue.start()
    flood = [queue.submit(request(f"a{i}"), "A", "alice") for i in range(20)]
    await backend.wait_for_requests(1)
    single = queue.submit(request("b"), "B", "bob")
    backend.release(21)
    results = await asyncio.gather(*(collect(j) for j in [*flood, single]))
    await queue.stop()
    order = started(backend, [*flood, single])
    assert order.index(single) == 1  # only the job already running went first
    assert all(error is None for _, error, _ in results)


async def test_round_robin_between_three_channels() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, max_per_channel=10, user_rate=100)
    await queue.start()
    jobs = {c: [queue.submit(request(), c, c) for _ in range(3)] for c in "ABC"}
    backend.release(9)
    await asyncio.gather(*(collect(j) for js in jobs.values() for j in js))
    await queue.stop()
    order = started(backend, [j for js in jobs.values() for j in js])
    assert "".join(j.channel for j in order) == "ABCABCABC"


async def test_waiting_jobs_are_told_their_position() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    first = queue.submit(request(), "A", "u1")
    await backend.wait_for_requests(1)
    second = queue.submit(request(), "B", "u2")
    third = queue.submit(request(), "C", "u3")
    backend.release(3)
    results = await asyncio.gather(collect(first), collect(second), collect(third))
    await queue.stop()
    assert results[0][2] == []  # started at once
    assert results[1][2] == [1]
    assert results[2][2] == [2, 1]


async def test_queue_is_bounded_per_channel_and_globally() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, max_pending=5, max_per_channel=3, user_rate=100)
    for _ in range(3):
        queue.submit(request(), "A", "u")
    with pytest.raises(QueueFullError, match="busy, try again shortly"):
        queue.submit(request(), "A", "u")
    queue.submit(request(), "B", "u")
    queue.submit(request(), "C", "u")
    with pytest.raises(QueueFullError, match="try again shortly"):
        queue.submit(request(), "D", "u")
    await queue.stop()


async def test_per_user_rate_limit_with_a_fake_clock() -> None:
    clock = FakeClock()
    queue = InferenceQueue(FakeBackend(gated=True), user_rate=3, user_window=60, clock=clock,
                           max_per_channel=20)
    for _ in range(3):
        queue.submit(request(), "A", "spammer")
    with pytest.raises(RateLimitedError, match="try again in 60 s"):
        queue.submit(request(), "A", "spammer")
    queue.submit(request(), "A", "someone-else")
    clock.advance(45)
    with pytest.raises(RateLimitedError, match="try again in 15 s"):
        queue.submit(request(), "A", "spammer")
    clock.advance(15)
    queue.submit(request(), "A", "spammer")
    await queue.stop()


async def test_a_job_past_its_timeout_fails_with_a_message_and_the_next_runs() -> None:
    clock = FakeClock()
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, job_timeout=30, user_rate=100, clock=clock,
                           sleep=clock.sleep)
    await queue.start()
    stuck = queue.submit(request(), "A", "u")
    after = queue.submit(request(), "B", "u")
    await backend.wait_for_requests(1)
    clock.advance(29)
    await settle()
    assert not stuck.finished
    clock.advance(1)
    _, error, _ = await collect(stuck)
    assert isinstance(error, JobTimeoutError)
    assert "longer than 30 s" in str(error)
    backend.release()
    text, error2, _ = await collect(after)
    await queue.stop()
    assert error2 is None and text == "Hello from the fake backend."


async def test_cancel_waiting_and_running_jobs() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    running = queue.submit(request(), "A", "u")
    waiting = queue.submit(request(), "B", "u")
    last = queue.submit(request(), "C", "u")
    await backend.wait_for_requests(1)
    waiting.cancel()
    running.cancel()
    backend.release(3)
    results = await asyncio.gather(collect(running), collect(waiting), collect(last))
    await queue.stop()
    assert isinstance(results[0][1], JobCancelledError)
    assert isinstance(results[1][1], JobCancelledError)
    assert results[2] == ("Hello from the fake backend.", None, [2, 1])
    assert not waiting.started
    assert waiting not in started(backend, [running, waiting, last])


async def test_a_failing_job_fails_alone() -> None:
    backend = FakeBackend(fail_with="The model failed while generating (RuntimeError).")
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    bad = queue.submit(request(), "A", "u")
    _, error, _ = await collect(bad)
    assert error is not None and "RuntimeError" in str(error)
    backend.fail_with = None
    text, error, _ = await collect(queue.submit(request(), "A", "u"))
    await queue.stop()
    assert error is None and text


async def test_parallel_backend_gets_at_most_max_parallel_jobs() -> None:
    backend = FakeBackend(gated=True, max_parallel=2)
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    jobs = [queue.submit(request(), str(i), "u") for i in range(5)]
    await backend.wait_for_requests(2)
    await settle()  # a third job would start now
    assert queue.running_count == 2 and len(backend.requests) == 2
    backend.release(5)
    await asyncio.gather(*(collect(j) for j in jobs))
    await queue.stop()


async def test_a_job_cancelled_as_it_starts_frees_its_slot() -> None:
    backend = FakeBackend()
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    first = queue.submit(request(), "A", "u")
    await asyncio.sleep(0)  # the scheduler has created the task, which has not run yet
    first.cancel()
    _, error, _ = await collect(first)
    assert isinstance(error, JobCancelledError)
    text, error, _ = await collect(queue.submit(request(), "B", "u"))
    await queue.stop()
    assert error is None and text == "Hello from the fake backend."


async def test_a_channel_runs_one_job_at_a_time_even_with_free_slots() -> None:
    backend = FakeBackend(gated=True, max_parallel=3)
    queue = InferenceQueue(backend, user_rate=100)
    await queue.start()
    a1, a2 = queue.submit(request("a1"), "A", "u"), queue.submit(request("a2"), "A", "u")
    b1 = queue.submit(request("b1"), "B", "u")
    await backend.wait_for_requests(2)
    await settle()
    assert [r.messages[0].content for r in backend.requests] == ["a1", "b1"]
    backend.release(3)
    results = await asyncio.gather(collect(a1), collect(a2), collect(b1))
    await queue.stop()
    assert [r.messages[0].content for r in backend.requests] == ["a1", "b1", "a2"]
    assert results[1][2] == [1]  # a2 was told it waits
