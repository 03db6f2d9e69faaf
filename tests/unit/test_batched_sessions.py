"""Which conversation lives in which KV sequence: prefix reuse, chunking and LRU eviction."""

from __future__ import annotations

import pytest

from bot.backends.sessions import (
    MIN_CHUNK,
    SlotTable,
    common_prefix_length,
    next_chunk,
    reusable_prefix,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([], [1, 2], 0),
        ([1, 2, 3], [1, 2, 3], 3),
        ([1, 2, 3], [1, 2, 4, 5], 2),
        ([1, 2, 3, 4], [1, 2], 2),
        ([9], [1], 0),
    ],
)
def test_common_prefix_length(a: list[int], b: list[int], expected: int) -> None:
    assert common_prefix_length(a, b) == expected


def test_only_prompt_evaluated_tokens_are_reused() -> None:
    resident = [1, 2, 3, 4, 5, 6]  # 1-4 from the prompt, 5-6 generated one at a time
    assert reusable_prefix(resident, 4, [1, 2, 3, 4, 5, 6, 7, 8, 9]) == 4
    assert reusable_prefix(resident, 6, [1, 2, 3, 4, 5, 6, 7, 8, 9]) == 6
    assert reusable_prefix(resident, 4, [1, 2, 9, 9, 9]) == 2


def test_at_least_two_prompt_tokens_are_always_evaluated() -> None:
    assert reusable_prefix([1, 2, 3, 4], 4, [1, 2, 3, 4]) == 4 - MIN_CHUNK
    assert reusable_prefix([1, 2, 3, 4], 4, [1, 2, 3, 4, 5]) == 5 - MIN_CHUNK
    assert reusable_prefix([1], 1, [1]) == 0


@pytest.mark.parametrize(
    ("remaining", "limit", "expected"),
    [
        (10, 64, 10),
        (64, 64, 64),
        (65, 64, 63),  # taking 64 would leave a single token for the next chunk
        (66, 64, 64),
        (200, 64, 64),
        (2, 1, 2),  # a limit below three still never splits off single tokens
        (5, 1, 3),
    ],
)
def test_next_chunk_never_leaves_a_single_token(
    remaining: int, limit: int, expected: int
) -> None:
    assert next_chunk(remaining, limit) == expected
    left = remaining - next_chunk(remaining, limit)
    assert left == 0 or left >= MIN_CHUNK


def test_a_returning_session_gets_its_own_slot_and_keeps_its_prefix() -> None:
    table = SlotTable(3)
    first = table.acquire("a", [1, 2, 3, 4])
    assert first is not None and first.keep == 0
    first.slot.tokens[:] = [1, 2, 3, 4, 50, 51]
    first.slot.exact = 4
    table.release(first.slot)
    table.acquire("b", [7, 8, 9])  # someone else in between

    again = table.acquire("a", [1, 2, 3, 4, 50, 51, 5, 6])
    assert again is not None
    assert again.slot is first.slot
    assert again.keep == 4
    assert again.evicted is None
    assert again.slot.tokens == [1, 2, 3, 4]


def test_empty_slots_are_used_before_anyone_is_evicted() -> None:
    table = SlotTable(2)
    a = table.acquire("a", [1, 2, 3])
    assert a is not None
    a.slot.tokens[:] = [1, 2, 3]
    table.release(a.slot)
    b = table.acquire("b", [4, 5, 6])
    assert b is not None
    assert b.slot is not a.slot
    assert b.evicted is None


def test_the_least_recently_used_idle_session_is_evicted() -> None:
    table = SlotTable(2)
    for session in ("a", "b"):
        lease = table.acquire(session, [1, 2, 3])
        assert lease is not None
        lease.slot.tokens[:] = [1, 2, 3]
        lease.slot.exact = 3
        table.release(lease.slot)
    touched = table.acquire("a", [1, 2, 3, 4])  # a is now the most recent
    assert touched is not None
    table.release(touched.slot)

    c = table.acquire("c", [9, 9, 9])
    assert c is not None
    assert c.evicted == "b"
    assert table.resident("b") is None
    assert table.resident("a") is not None


def test_an_evicted_slot_keeps_a_prefix_it_shares_with_the_newcomer() -> None:
    table = SlotTable(1)
    a = table.acquire("a", [1, 2, 3, 4, 5])
    assert a is not None
    a.slot.tokens[:] = [1, 2, 3, 4, 5]
    a.slot.exact = 5
    table.release(a.slot)
    b = table.acquire("b", [1, 2, 3, 9, 9])  # the same system prompt, say
    assert b is not None
    assert b.evicted == "a"
    assert b.keep == 3


def test_busy_slots_are_never_taken() -> None:
    table = SlotTable(2)
    assert table.acquire("a", [1, 2]) is not None
    assert table.acquire("b", [1, 2]) is not None
    assert table.acquire("c", [1, 2]) is None


def test_two_jobs_of_one_channel_at_once_leave_one_resident_copy() -> None:
    table = SlotTable(3)
    first = table.acquire("a", [1, 2, 3])
    second = table.acquire("a", [1, 2, 3])
    assert first is not None and second is not None
    assert first.slot is not second.slot
    table.release(first.slot)
    table.release(second.slot)
    holders = [s for s in table.slots if s.session == "a"]
    assert holders == [second.slot]


def test_forgetting_a_slot_empties_it() -> None:
    table = SlotTable(1)
    lease = table.acquire("a", [1, 2, 3])
    assert lease is not None
    lease.slot.tokens[:] = [1, 2, 3]
    lease.slot.exact = 3
    table.forget(lease.slot)
    table.release(lease.slot)
    again = table.acquire("a", [1, 2, 3, 4])
    assert again is not None
    assert again.keep == 0


def test_a_long_shared_prefix_is_copied_from_another_sequence() -> None:
    table = SlotTable(3)
    system = list(range(100, 140))  # a system prompt every channel of a community shares
    a = table.acquire("a", [*system, 1, 2, 3])
    assert a is not None
    a.slot.tokens[:] = [*system, 1, 2, 3, 77]
    a.slot.exact = len(system) + 3

    b = table.acquire("b", [*system, 4, 5, 6])  # while a is still generating
    assert b is not None
    assert b.slot is not a.slot
    assert b.source is a.slot
    assert b.keep == len(system)
    assert b.slot.tokens == system
    assert b.slot.exact == len(system)


def test_a_short_shared_prefix_is_evaluated_rather_than_copied() -> None:
    table = SlotTable(2)
    a = table.acquire("a", [1, 2, 3, 4, 5, 6])
    assert a is not None
    a.slot.tokens[:] = [1, 2, 3, 4, 5, 6]
    a.slot.exact = 6
    b = table.acquire("b", [1, 2, 3, 4, 9, 9])
    assert b is not None
    assert b.source is None
    assert b.keep == 0


def test_a_returning_session_copies_only_when_the_gain_is_large() -> None:
    table = SlotTable(2)
    shared = list(range(50))
    own = table.acquire("a", [*shared, 1])
    assert own is not None
    own.slot.tokens[:] = [*shared[:10]]
    own.slot.exact = 10
    table.release(own.slot)
    other = table.acquire("b", [*shared, 2])
    assert other is not None
    other.slot.tokens[:] = [*shared, 2]
    other.slot.exact = len(shared) + 1
    table.release(other.slot)

    again = table.acquire("a", [*shared, 3, 4])
    assert again is not None
    assert again.slot is own.slot
    assert again.source is other.slot
    assert again.keep == len(shared)
