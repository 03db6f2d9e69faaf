"""The bounded LRU mapping behind the per-message caches (bot.lru)."""

from __future__ import annotations

import pytest

from bot.lru import LRU


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"] = 1
    cache["b"] = 2
    assert cache.get("a") == 1  # a is now the most recent
    cache["c"] = 3
    assert list(cache) == ["a", "c"]
    assert cache["a"] == 1
    cache["d"] = 4
    assert sorted(cache) == ["a", "d"]


def test_writing_an_entry_again_makes_it_the_most_recent() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"] = 1
    cache["b"] = 2
    cache["a"] = 10
    cache["c"] = 3
    assert dict(cache.items()) == {"a": 10, "c": 3}
    assert list(cache.values()) == [10, 3]  # looking does not reorder
    assert list(cache.keys()) == ["a", "c"]


def test_membership_and_pop_leave_the_order_alone() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"] = 1
    cache["b"] = 2
    assert "a" in cache
    cache["c"] = 3
    assert "a" not in cache
    assert cache.pop("b") == 2
    assert cache.pop("b", None) is None
    with pytest.raises(KeyError):
        cache.pop("b")
    with pytest.raises(KeyError):
        cache["b"]


def test_misses_give_the_default_and_store_nothing() -> None:
    cache: LRU[str, int | None] = LRU(4)
    assert cache.get("x") is None
    assert cache.get("x", 7) == 7
    cache["n"] = None  # a cached "nothing" is a hit
    assert "n" in cache and cache.get("n", 7) is None
    assert len(cache) == 1
    del cache["n"]
    cache.clear()
    assert len(cache) == 0


def test_an_lru_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one"):
        LRU(0)
