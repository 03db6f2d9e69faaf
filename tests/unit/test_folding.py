"""Folding text to what a reader reads, and the map back to the original characters."""

from __future__ import annotations

import pytest

from bot.rules.folding import base, fold_word, views

CYRILLIC_A = "\u0430"
GREEK_RHO = "\u03c1"
ZERO_WIDTH = "\u200b"


def readings(text: str) -> list[str]:
    return [view.text for view in views(text)]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Páris", "paris"),
        (f"P{CYRILLIC_A}ris", "paris"),
        (f"{GREEK_RHO}orn", "porn"),
        ("\uff30\uff21\uff32\uff29\uff33", "paris"),  # fullwidth
        ("\U0001d40f\U0001d400\U0001d411\U0001d408\U0001d412", "paris"),  # mathematical bold
        (f"sh{ZERO_WIDTH}i\u00adt", "shit"),  # zero-width space, soft hyphen
        ("ﬁne", "fine"),  # ligature
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
    ],
)
def test_the_base_fold_reads_letters_as_a_reader_does(written: str, read: str) -> None:
    assert base(written).text == read


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("**Par**is", "**paris"),
        ("sh_i_t", "shit"),
        ("d-a-m-n", "damn"),
        ("d a m n", "damn"),
        ("d.a.m.n", "damn"),
        ("D A M N", "damn"),
        ("d - a - m - n", "damn"),
        ("B-A-N-A-N-A", "banana"),
        ("n.s.f.w", "nsfw"),
        ("p0rn", "porn"),
        ("P4R1S", "paris"),
        ("$h1t", "shit"),
        ("he11", "hell"),
        ("john [at] example [dot] com", "john@example.com"),
        ("john at example dot com", "john@example.com"),
        ("hxxps://example[.]com", "https://example.com"),
        ("www dot example dot org", "www.example.org"),
        ("Ban-ana", "banana"),
    ],
)
def test_every_obfuscation_has_a_reading(written: str, read: str) -> None:
    assert read in readings(written)


def test_spelled_words_side_by_side_stay_apart() -> None:
    assert "damn damn damn damn" in readings("d-a-m-n d a m n d.a.m.n D A M N")
    assert "a damn" in readings("a d.a.m.n")


@pytest.mark.parametrize(
    "text",
    [
        "I am a cat and I have 2 dogs.",
        "In 1990 we moved; the room was 3.5 by 4 metres.",
        "a red dot in the middle",
        "look at example",
        "arrived at noon",
    ],
)
def test_ordinary_text_reads_as_itself(text: str) -> None:
    folded = readings(text)
    words = set(text.lower().split())
    for reading in folded:
        assert set(reading.split()) <= words | {"ihave"}, reading


def test_every_folded_character_maps_back_to_what_was_written() -> None:
    text = f"Say **P{CYRILLIC_A}r**is, d-a-m-n and sh{ZERO_WIDTH}it."
    for view in views(text):
        for index, char in enumerate(view.text):
            start, end = view.original(index, index + 1)
            written = text[start:end]
            assert fold_word(written) == char or char in "@.", (view.text, index, written)
    spelled = next(v for v in views(text) if "damn" in v.text)
    at = spelled.text.index("damn")
    assert text[slice(*spelled.original(at, at + 4))] == "d-a-m-n"


def test_single_letters_are_only_joined_with_a_letter_among_them() -> None:
    assert readings("count 0 1 2 3 4 5 6 7 8 9.") == ["count 0 1 2 3 4 5 6 7 8 9."]
