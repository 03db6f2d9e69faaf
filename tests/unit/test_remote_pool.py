"""The server pool: least loaded first, a channel back to its server, busy and dead servers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.backends.remote.client import ServerClient
from bot.backends.remote.kinds import ServerKind
from bot.backends.remote.pool import Server, ServerPool
from bot.errors import ServerUnavailableError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def servers(*capacities: int, kind: ServerKind = "llama-server") -> list[Server]:
    http = httpx.AsyncClient()
    return [Server(ServerClient(http, f"http://127.0.0.1:{9000 + i}", kind, f"server {i + 1}"),
                   capacity=c) for i, c in enumerate(capacities)]


async def test_each_job_goes_to_the_least_loaded_server() -> None:
    pool = ServerPool(servers(2, 2))
    first = await pool.lease("a")
    second = await pool.lease("b")
    third = await pool.lease("c")
    assert [first.server.label, second.server.label, third.server.label] == [
        "server 1", "server 2", "server 1"]


async def test_load_is_relative_to_capacity() -> None:
    pool = ServerPool(servers(1, 4))
    labels = [(await pool.lease(f"c{i}")).server.label for i in range(5)]
    assert labels.count("server 2") == 4


async def test_a_returning_channel_goes_back_to_its_server_and_slot() -> None:
    pool = ServerPool(servers(4, 4))
    leases = [await pool.lease(f"c{i}") for i in range(4)]
    for lease in leases:
        pool.release(lease)
    again = [await pool.lease(f"c{i}") for i in reversed(range(4))]
    assert [(x.server, x.slot) for x in again] == [(x.server, x.slot) for x in reversed(leases)]


async def test_round_robin_ignores_where_a_channel_was() -> None:
    pool = ServerPool(servers(4, 4), routing="round-robin")
    places = []
    for _ in range(4):
        lease = await pool.lease("same")
        places.append(lease.server.label)
        pool.release(lease)
    assert places == ["server 1", "server 2", "server 1", "server 2"]


async def test_new_channels_spread_over_idle_servers() -> None:
    pool = ServerPool(servers(2, 2))
    for channel in ("a", "b"):
        pool.release(await pool.lease(channel))
    a, b = pool._affinity["a"][0], pool._affinity["b"][0]
    assert a is not b


async def test_a_busy_server_gets_no_job_until_its_retry_after() -> None:
    clock = Clock()
    pool = ServerPool(servers(1, 1), clock=clock)
    one, two = pool.servers
    pool.mark_busy(one, 5.0)
    lease = await pool.lease("a")
    assert lease.server is two
    pool.release(lease)
    clock.now += 6
    assert (await pool.lease("b")).server is one


async def test_a_job_waits_for_room_in_arrival_order() -> None:
    pool = ServerPool(servers(1))
    held = await pool.lease("a")
    order: list[str] = []

    async def take(channel: str) -> None:
        lease = await pool.lease(channel)
        order.append(channel)
        pool.release(lease)

    waiting = [asyncio.create_task(take(c)) for c in ("b", "c", "d")]
    await asyncio.sleep(0)
    pool.release(held)
    await asyncio.gather(*waiting)
    assert order == ["b", "c", "d"]


async def test_a_dead_server_is_out_until_it_answers_again() -> None:
    pool = ServerPool(servers(1, 1))
    one, two = pool.servers
    pool.mark_down(one, "connection refused")
    assert pool.capacity == 1
    assert (await pool.lease("a")).server is two
    pool.mark_up(one, slots=3)
    assert pool.capacity == 4


async def test_no_server_alive_fails_at_once_with_a_sentence() -> None:
    pool = ServerPool(servers(1, 1))
    for server in pool.servers:
        pool.mark_down(server, "gone")
    with pytest.raises(ServerUnavailableError, match="No inference server is answering"):
        await pool.lease("a")


async def test_a_server_that_already_failed_this_job_is_not_tried_again() -> None:
    pool = ServerPool(servers(1, 1))
    one, two = pool.servers
    assert (await pool.lease("a", exclude={one})).server is two
    with pytest.raises(ServerUnavailableError, match="failed"):
        await pool.lease("b", exclude={one, two})


async def test_cabot_s_own_requests_only_take_an_idle_server() -> None:
    pool = ServerPool(servers(1, kind="llama-cpp-python"))
    [server] = pool.servers
    probe = pool.try_lease(server)
    assert probe is not None
    assert pool.try_lease(server) is None
    pool.release(probe)
    pool.release(probe)  # twice does nothing
    assert server.in_flight == 0
