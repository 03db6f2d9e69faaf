"""Which conversation lives in which KV sequence: prefix reuse, chunking and LRU eviction."""

from __future__ import annotations

import pytest

from bot.backends.sessions import (
    MIN_CHUNK,
    SlotTable,
    common_prefix_length,
    next_chunk,
    reusable_prefix,
    shared_chunks,
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


@pytest.mark.parametrize(
    ("remaining", "beside", "limit", "expected"),
    [
        ([57, 57, 57, 57], 0, 512, [57, 57, 57, 57]),  # alone: every newcomer at once
        ([3] * 8, 0, 512, [3] * 8),
        ([300], 4, 64, [60]),  # beside 4 streams: the rest of their micro-batch
        ([300, 5], 60, 64, [4]),
        ([2, 2, 2], 62, 64, [2, 2, 2]),  # 2 left in it: the next micro-batch too
        ([65], 0, 512, [63]),  # 64 + 1 would compute the last token alone
        ([129], 0, 512, [127]),
        ([40, 25], 0, 512, [40, 23]),
        ([63, 2], 0, 512, [63]),  # 63 + 2: the last chunk waits rather than end alone
        ([3], 62, 64, [3]),  # nothing shorter exists: better a lone token than no start
    ],
)
def test_shared_chunks_fill_micro_batches_and_never_end_one_with_a_lone_token(
    remaining: list[int], beside: int, limit: int, expected: list[int]
) -> None:
    assert shared_chunks(remaining, beside=beside, limit=limit, ubatch=64) == expected


@pytest.mark.parametrize("beside", [0, 1, 7, 8, 61, 62, 63, 64, 65])
def test_shared_chunks_keep_every_rule(beside: int) -> None:
    for remaining in ([2], [3], [4], [65], [64, 64, 1000], [2] * 40, [5, 70, 3, 130]):
        limit = 64 if beside else 512 - beside
        sizes = shared_chunks(remaining, beside=beside, limit=limit, ubatch=64)
        assert sizes, "the oldest newcomer always gets a chunk"
        assert sum(sizes) <= max(limit, MIN_CHUNK + 1)
        for size, left in zip(sizes, remaining, strict=False):
            assert MIN_CHUNK <= size <= left
            assert left - size == 0 or left - size >= MIN_CHUNK
        if beside % 64 and 64 - beside % 64 > MIN_CHUNK:  # room in the streams' last pass
            assert (beside + sum(sizes) + 63) // 64 == (beside + 63) // 64  # no extra pass
        if (beside + sum(sizes)) % 64 == 1:  # a lone token at the end only for lack of choice
            assert len(sizes) == 1 and sizes[0] < 2 * MIN_CHUNK


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


# -- a shared KV budget -----------------------------------------------------------------


def resident(table: SlotTable, session: str, tokens: int, *, generated: int = 0) -> None:
    """``session`` ran a job on ``tokens`` prompt tokens (and generated some) and ended."""
    prompt = list(range(1000 * len(session), 1000 * len(session) + tokens))
    lease = table.acquire(session, prompt)
    assert lease is not None
    lease.slot.tokens[:] = [*prompt, *range(generated)]
    lease.slot.exact = tokens
    table.release(lease.slot)


def test_a_finished_job_keeps_only_its_prompt_resident() -> None:
    table = SlotTable(2, budget=100)
    resident(table, "a", 30, generated=12)
    holder = table.resident("a")
    assert holder is not None
    assert len(holder.tokens) == 30
    assert table.held() == 30


def test_a_running_job_holds_its_prompt_and_reply_room() -> None:
    table = SlotTable(2, budget=100)
    lease = table.acquire("a", list(range(30)), 50)
    assert lease is not None
    assert table.held() == 80
    lease.slot.tokens[:] = list(range(60))  # half way through the reply
    assert table.held() == 80


def test_the_least_recently_used_idle_conversations_make_room() -> None:
    table = SlotTable(8, budget=100)
    for session in ("a", "b", "c"):
        resident(table, session, 30)
    resident(table, "a", 30)  # a is now the most recent; b the least
    b, c = table.resident("b"), table.resident("c")
    assert b is not None and c is not None

    lease = table.acquire("d", [7] * 20, 40)  # 60 needed, 10 free: b and c must go
    assert lease is not None
    assert lease.freed == (b, c)
    assert table.resident("b") is None
    assert table.resident("c") is None
    assert table.resident("a") is not None
    assert table.held() <= 100


def test_only_as_many_conversations_are_evicted_as_the_job_needs() -> None:
    table = SlotTable(8, budget=100)
    for session in ("a", "b", "c"):
        resident(table, session, 30)
    lease = table.acquire("d", [7] * 10, 10)  # 20 needed, 10 free: one eviction
    assert lease is not None
    assert len(lease.freed) == 1
    assert table.resident("a") is None  # the oldest
    assert table.resident("b") is not None and table.resident("c") is not None


def test_a_returning_conversation_counts_its_own_cells_once() -> None:
    table = SlotTable(4, budget=100)
    resident(table, "a", 60)
    resident(table, "b", 30)
    # a's 60 kept tokens are part of its 70-token prompt: 70 + 20 + b's 30 > 100 evicts b,
    # but a never evicts itself.
    lease = table.acquire("a", [*range(1000, 1060), *([5] * 10)], 20)
    assert lease is not None
    assert lease.keep == 60
    assert table.resident("b") is None
    assert table.held() == 90


def test_running_jobs_are_never_evicted_and_a_job_that_cannot_fit_waits() -> None:
    table = SlotTable(4, budget=100)
    running = table.acquire("a", [1] * 40, 30)
    assert running is not None
    resident(table, "b", 20)

    assert table.acquire("c", [2] * 20, 30) is None  # 70 + 50 > 100 even without b
    assert table.resident("b") is not None  # nothing was evicted for nothing
    assert running.slot.busy

    table.release(running.slot)
    later = table.acquire("c", [2] * 20, 30)
    assert later is not None


def test_a_copy_source_is_kept_while_it_fits_and_dropped_when_it_does_not() -> None:
    system = list(range(100, 140))
    table = SlotTable(4, budget=150)
    source = table.acquire("a", [*system, 1, 2])
    assert source is not None
    source.slot.tokens[:] = [*system, 1, 2]
    source.slot.exact = len(system) + 2
    table.release(source.slot)

    copy = table.acquire("b", [*system, 3, 4], 60)  # 42 + 102 fits beside a
    assert copy is not None and copy.source is source.slot and not copy.freed
    table.release(copy.slot)

    table.forget(copy.slot)
    squeezed = table.acquire("c", [*system, 5, 6], 70)  # 112 + a's 42 > 150: a must go
    assert squeezed is not None
    assert squeezed.source is None
    assert squeezed.keep == 0
    assert [s.seq_id for s in squeezed.freed] == [source.slot.seq_id]


def test_anonymous_leftovers_are_evicted_before_any_channel() -> None:
    table = SlotTable(4, budget=100)
    resident(table, "a", 30)
    first = table.acquire("b", [1] * 30)
    second = table.acquire("b", [1] * 30)
    assert first is not None and second is not None
    for job in (first, second):
        job.slot.tokens[:] = [1] * 30
        job.slot.exact = 30
    table.release(first.slot)
    table.release(second.slot)  # first's copy of b is now anonymous
    lease = table.acquire("c", [2] * 20, 20)  # 40 needed, 10 free
    assert lease is not None
    assert [s.seq_id for s in lease.freed] == [first.slot.seq_id]
    assert table.resident("a") is not None


def test_without_a_budget_nothing_is_evicted_for_room() -> None:
    table = SlotTable(2)
    resident(table, "a", 3000)
    lease = table.acquire("b", [1] * 3000, 3000)
    assert lease is not None
    assert not lease.freed
    assert table.fits(10**9)
    assert not SlotTable(2, budget=100).fits(101)


def test_room_is_made_least_recently_used_first_even_when_that_one_could_be_copied() -> None:
    system = list(range(100, 140))
    table = SlotTable(4, budget=200)
    for session, tail in (("a", [1, 2]), ("b", [3, 4])):
        lease = table.acquire(session, [*system, *tail])
        assert lease is not None
        lease.slot.tokens[:] = [*system, *tail, *range(30)]
        lease.slot.exact = len(system) + 2 + 30
        table.release(lease.slot)
    a, b = table.resident("a"), table.resident("b")
    assert a is not None and b is not None
    # c shares the system prompt with both and needs 42 + 60 beside 72 + 72: one must go.
    lease = table.acquire("c", [*system, 5, 6], 60)
    assert lease is not None
    assert [s.seq_id for s in lease.freed] == [a.seq_id]  # a was heard from longest ago
    assert lease.source is b  # the prefix comes from the one that stays
    assert lease.keep == len(system)
    assert table.resident("b") is b and table.resident("a") is None
