"""Which conversation lives in which KV sequence: prefix reuse, a KV budget, LRU eviction.

Pure bookkeeping for the batched engine (no llama.cpp here), so it is unit-tested alone.

Each slot is one llama.cpp sequence. A slot remembers the tokens its KV holds and how
many of them the next turn may reuse (``exact``). With a stream per sequence that is
the part that came from prompt evaluation: llama.cpp computes a token evaluated alone
(one query per sequence, as in generation) with slightly different rounding from the
same token evaluated in a chunk of two or more, so reusing generated tokens' KV would
make a resident channel's reply differ from the reply the same channel gets after
eviction and re-evaluation from text. Evaluating every prompt token in chunks of at
least two keeps the two identical, and a finished job's generated tail is dropped
(``release``). In the shared cache, whose rounding already depends on where cells sit,
the engine keeps the reply's KV too (``exact`` covers it), so a returning channel reads
only its new message.

With a KV budget (one cache shared by every sequence, ``CABOT_KV_TOKENS``) the table
also counts cells: an idle slot holds its tokens, a running job its prompt plus its reply
room, reserved when it starts so it can never run out mid-reply. A job that does not
fit evicts the least recently used idle conversations until it does; running jobs are
never evicted, and a job that would not fit even with every idle one gone waits for a
running one to finish.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

MIN_CHUNK = 2
"""The fewest tokens a prompt chunk may hold (a single token takes the generation path)."""

MIN_COPY_GAIN = 16
"""Copying another sequence's KV (a whole stream) pays off from about this many tokens."""

TOKENS_PER_RESIDENT = 704
"""The default KV budget per resident channel: a conversation of about 650 tokens and a
short reply's room each (with the default 8 channels, 5,632 cells, about 124 MiB of f16
KV on the bundled model, against 8 x 2,048 reserved in full)."""


def kv_budget(kv_tokens: int | None, n_ctx: int, resident: int) -> int | None:
    """The KV cells all sequences share, or None for a full window each (``kv_tokens`` 0).

    ``kv_tokens`` None means the default: ``TOKENS_PER_RESIDENT`` for each of the
    ``resident`` channels, and at least one ``n_ctx`` window.
    """
    if kv_tokens is None:
        return max(TOKENS_PER_RESIDENT * resident, n_ctx)
    return kv_tokens or None


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def reusable_prefix(resident: Sequence[int], exact: int, prompt: Sequence[int]) -> int:
    """Leading prompt tokens whose resident KV can be kept as is.

    ``exact`` is how many of the ``resident`` tokens may be reused (`Slot.exact`). At least
    ``MIN_CHUNK`` prompt tokens are always left to evaluate, so the last one (whose logits
    give the first reply token) is computed by a chunk, as it would be from scratch.
    """
    shared = common_prefix_length(resident[:exact], prompt)
    return max(0, min(shared, len(prompt) - MIN_CHUNK))


def next_chunk(remaining: int, limit: int) -> int:
    """How many of ``remaining`` prompt tokens to evaluate now, at most ``limit``.

    Never leaves a single token for later, and never takes fewer than ``MIN_CHUNK``
    unless fewer remain.
    """
    limit = max(limit, MIN_CHUNK + 1)
    if remaining <= limit:
        return remaining
    take = limit
    if remaining - take < MIN_CHUNK:
        take = remaining - MIN_CHUNK
    return take


def shared_chunks(remaining: Sequence[int], *, beside: int, limit: int, ubatch: int
                  ) -> list[int]:
    """Sizes of the prompt chunks that join ``beside`` generating tokens in one call.

    ``remaining`` is each newcomer's prompt tokens still to read, oldest first; ``limit``
    the prompt tokens the call may hold. llama.cpp computes a call in micro-batches of
    ``ubatch`` tokens, in order: beside running streams the chunks fill what is left of
    the micro-batch the generating tokens start (no extra pass over the weights), and no
    call ends with a micro-batch of a single prompt token, which llama.cpp would compute
    as a token alone. Every size is one `next_chunk` would give (or two less).
    """
    if beside:
        room = ubatch - beside % ubatch
        if room <= MIN_CHUNK:
            room += ubatch
        room = min(room, limit)
    else:
        room = limit
    sizes: list[int] = []
    for left in remaining:
        size = next_chunk(left, room)
        if size > room:
            break
        sizes.append(size)
        room -= size
        if room <= MIN_CHUNK:
            break
    while len(sizes) > 1 or (sizes and sizes[0] >= 2 * MIN_CHUNK):
        if (beside + sum(sizes)) % ubatch != 1:
            break
        if sizes[-1] >= 2 * MIN_CHUNK:
            sizes[-1] -= MIN_CHUNK  # leaves at least MIN_CHUNK of it for the next call
        else:
            sizes.pop()
    return sizes


@dataclass
class Slot:
    """One KV sequence and what it holds."""

    seq_id: int
    session: str | None = None
    tokens: list[int] = field(default_factory=list)
    """Tokens whose KV is in this sequence, at positions ``0..len(tokens)-1``."""
    exact: int = 0
    """How many leading ``tokens`` the next turn may reuse: those evaluated as prompt
    chunks, and in the shared cache a finished reply's too."""
    busy: bool = False
    last_used: int = 0
    reserved: int = 0
    """KV cells a running job may fill (its prompt and reply room); 0 when idle."""

    @property
    def held(self) -> int:
        """KV cells this slot counts against the budget."""
        return max(self.reserved, len(self.tokens))


@dataclass(frozen=True)
class Lease:
    """A slot given to a job: keep its first ``keep`` tokens, evaluate the rest."""

    slot: Slot
    keep: int
    evicted: str | None
    """The session that lived in the slot before and loses its resident KV, if any."""
    source: Slot | None = None
    """Copy this slot's KV into ``slot`` first: it shares a longer prefix with the prompt."""
    freed: tuple[Slot, ...] = ()
    """Idle slots emptied to make room in the KV budget: drop their KV."""


class SlotTable:
    """Assigns sequences to jobs, preferring a channel's own resident sequence.

    A job gets its session's idle slot if there is one; otherwise an empty slot; otherwise
    the least recently used idle slot, whose session is evicted (it will be re-evaluated
    from text when it returns). When another sequence shares a clearly longer prefix with
    the prompt (typically the same system prompt, for a channel's first message), its KV
    is copied instead of evaluated again.

    Args:
        n_slots: sequences.
        budget: KV cells all sequences share, or None when each has its own full context.
    """

    def __init__(self, n_slots: int, budget: int | None = None) -> None:
        if n_slots < 1:
            raise ValueError("at least one slot is needed")
        if budget is not None and budget < 1:
            raise ValueError("a KV budget holds at least one token")
        self.slots = [Slot(seq_id) for seq_id in range(n_slots)]
        self.budget = budget
        self._clock = itertools.count(1)

    def held(self) -> int:
        """KV cells counted against the budget: idle slots' tokens, running jobs' room."""
        return sum(s.held for s in self.slots)

    def fits(self, need: int) -> bool:
        """Whether a job needing ``need`` cells could ever start (with nothing else held)."""
        return self.budget is None or need <= self.budget

    def resident(self, session: str) -> Slot | None:
        """The slot holding ``session``'s conversation, if it is resident."""
        return next((s for s in self.slots if s.session == session), None)

    def acquire(
        self, session: str | None, prompt: Sequence[int], room: int = 0
    ) -> Lease | None:
        """A slot for a job on ``prompt`` with ``room`` reply tokens, or None: it waits.

        None when every slot is busy, or when the budget cannot hold the job's prompt and
        reply room even after evicting every idle conversation (running jobs will free
        some); nothing is evicted then.
        """
        idle = [s for s in self.slots if not s.busy]
        if not idle:
            return None
        own = next((s for s in idle if session is not None and s.session == session), None)
        if own is not None:
            slot, evicted = own, None
        else:
            empty = [s for s in idle if s.session is None]
            # Anonymous slots (a finished duplicate job, a session moved elsewhere) hold
            # nothing anyone will ask for again; empty ones cost nothing to take.
            pool = empty or idle
            slot = min(pool, key=lambda s: (bool(s.tokens), s.last_used))
            evicted = slot.session
        # Whatever the slot held, a shared leading run of prompt-evaluated tokens (the
        # same conversation, or just the same system prompt) has exactly the KV a fresh
        # evaluation would compute, since each token's KV depends only on those before it.
        own_keep = keep = reusable_prefix(slot.tokens, slot.exact, prompt)
        source = None
        # Among sources sharing as much, the most recently used: the last to be evicted.
        for other in sorted(self.slots, key=lambda s: s.last_used, reverse=True):
            if other is not slot:
                shared = reusable_prefix(other.tokens, other.exact, prompt)
                if shared >= keep + MIN_COPY_GAIN:
                    source, keep = other, shared
        freed = self._make_room(len(prompt) + room, slot)
        if freed is None:
            return None
        if source is not None and source in freed:
            # Room only without the copy source: evaluate the prefix instead (a copy
            # never keeps a conversation resident in place of a more recent one).
            source, keep = None, own_keep
        slot.busy = True
        slot.reserved = len(prompt) + room
        slot.session = session
        slot.last_used = next(self._clock)
        if source is not None:
            slot.tokens[:] = source.tokens[:keep]
            slot.exact = keep
        else:
            del slot.tokens[keep:]
            slot.exact = min(slot.exact, keep)
        return Lease(slot, keep, evicted if evicted != session else None, source, freed)

    def _make_room(self, need: int, slot: Slot) -> tuple[Slot, ...] | None:
        """Empty idle slots, least recently used first, until ``need`` cells fit in ``slot``.

        The slot's own KV stays; None (and nothing emptied) when even every other idle
        slot would not be enough.
        """
        if self.budget is None:
            return ()
        others = [s for s in self.slots if s is not slot]
        free = self.budget - need - sum(s.held for s in others)
        if free >= 0:
            return ()
        # Anonymous leftovers go first; then the channel not heard from the longest.
        candidates = sorted(
            (s for s in others if not s.busy and s.tokens),
            key=lambda s: (s.session is not None, s.last_used),
        )
        if free + sum(len(s.tokens) for s in candidates) < 0:
            return None
        freed = []
        for victim in candidates:
            free += len(victim.tokens)
            self.forget(victim)
            freed.append(victim)
            if free >= 0:
                break
        return tuple(freed)

    def release(self, slot: Slot) -> None:
        """The job on ``slot`` ended; its prompt's KV stays resident for the session.

        The tokens past ``slot.exact`` (a stream's generated tail, see the module
        docstring) are dropped: the engine must drop the sequence's KV from there on too.
        """
        slot.busy = False
        slot.reserved = 0
        del slot.tokens[slot.exact :]
        slot.last_used = next(self._clock)
        if slot.session is not None:
            for other in self.slots:
                if other is not slot and other.session == slot.session and not other.busy:
                    # Two jobs of one channel ran at once; the newest KV represents it.
                    other.session = None

    def restart(self, slot: Slot) -> None:
        """The job just given ``slot`` keeps none of its KV (it could not be cut back to
        the kept prefix): it evaluates its whole prompt."""
        slot.tokens.clear()
        slot.exact = 0

    def forget(self, slot: Slot) -> None:
        """The slot's KV is unknown (a failed evaluation): treat it as empty."""
        slot.tokens.clear()
        slot.exact = 0
        slot.session = None
