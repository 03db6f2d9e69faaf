"""Generation-time banning on a toy vocabulary: every way to spell a banned word is blocked."""

from __future__ import annotations

import re

import numpy as np

from bot.backends.banning import BannedWords, BannedWordsCache

VOCAB = ["", " ban", "ana", "Banana", " banana", "an", "a", "b", " BAN", "ANA", "s", " ",
         "(banana", "scrap", " crap", "py", "!", "bug", " big", " heck", "ban"]


def decode(tokens: list[int]) -> str:
    return "".join(VOCAB[t] for t in tokens)


def generate(banned: BannedWords, steps: int = 6) -> set[str]:
    """Every text reachable in ``steps`` tokens when banned tokens are never chosen."""
    texts: set[str] = set()
    frontier = [[16]]  # after "!"
    for _ in range(steps):
        nxt = []
        for seq in frontier:
            scores = np.zeros(len(VOCAB), dtype=np.single)
            banned(np.array(seq, dtype=np.intc), scores)
            for token in np.flatnonzero(scores == 0):
                if token:
                    nxt.append([*seq, int(token)])
        frontier = nxt[:4000]
        texts |= {decode(s) for s in frontier}
    return texts


def test_no_tokenization_of_a_banned_word_survives() -> None:
    banned = BannedWords(["banana"], VOCAB, decode)
    inflected = re.compile(r"bananas?|bananaes|bananas?ed|bananay")
    for text in generate(banned, steps=5):
        lowered = text.lower()
        words = "".join(c if c.isalnum() else " " for c in lowered).split()
        assert not any(inflected.fullmatch(w) for w in words), text


def test_innocent_words_are_still_reachable() -> None:
    banned = BannedWords(["banana", "crap"], VOCAB, decode)
    scores = np.zeros(len(VOCAB), dtype=np.single)
    banned(np.array([16], dtype=np.intc), scores)
    allowed = {VOCAB[i] for i in np.flatnonzero(scores == 0)}
    assert {" ban", "ana", "scrap", " big"} <= allowed
    assert not {" banana", "Banana", "(banana", " crap"} & allowed


def test_completion_is_blocked_only_at_a_word_start() -> None:
    banned = BannedWords(["banana"], VOCAB, decode)
    after_ban = [VOCAB.index(" ban"), VOCAB.index("an")]
    scores = np.zeros(len(VOCAB), dtype=np.single)
    banned(np.array(after_ban, dtype=np.intc), scores)
    assert scores[VOCAB.index("a")] == -np.inf  # " banan" + "a"
    mid_word = [VOCAB.index("scrap"), VOCAB.index("ban"), VOCAB.index("an")]
    scores = np.zeros(len(VOCAB), dtype=np.single)
    banned(np.array(mid_word, dtype=np.intc), scores)
    assert scores[VOCAB.index("a")] == 0  # "scrapbanan" + "a" is not a word starting "banana"


def test_phrases_are_blocked_across_words() -> None:
    banned = BannedWords(["big heck"], VOCAB, decode)
    scores = np.zeros(len(VOCAB), dtype=np.single)
    banned(np.array([16, VOCAB.index(" big")], dtype=np.intc), scores)
    assert scores[VOCAB.index(" heck")] == -np.inf
    scores = np.zeros(len(VOCAB), dtype=np.single)
    banned(np.array([16], dtype=np.intc), scores)
    assert scores[VOCAB.index(" heck")] == 0



def test_the_cache_builds_each_set_once_in_any_order_and_keeps_the_latest() -> None:
    vocab_reads = 0

    def vocab() -> list[str]:
        nonlocal vocab_reads
        vocab_reads += 1
        return VOCAB

    cache = BannedWordsCache(vocab, decode, size=2)
    assert vocab_reads == 0  # the vocabulary is read only when a set is first built
    first = cache.get(["crap", "banana"])
    assert cache.get(("banana", "crap")) is first
    second = cache.get(["heck"])
    cache.get(["banana", "crap"])  # the first set is now the most recently used
    cache.get(["big"])
    assert cache.get(["banana", "crap"]) is first
    assert cache.get(["heck"]) is not second  # evicted, rebuilt
    assert vocab_reads == 4
