"""Splitting long replies at clean boundaries."""

from __future__ import annotations

import pytest

from adapters.telegram.limits import utf16_length
from bot.splitting import open_fence, split_message


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello", 2000) == ["hello"]


def test_splits_on_paragraphs_then_sentences() -> None:
    paragraph = "This is a sentence. " * 40
    text = "\n\n".join([paragraph.strip()] * 4)
    chunks = split_message(text, 2000)
    assert all(0 < len(c) <= 2000 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks).replace("\n\n", " ").split() == text.split()


def test_code_block_cut_is_closed_and_reopened() -> None:
    code = "\n".join(f"    print({i})  # line {i}" for i in range(200))
    text = "Here is the code:\n\n```python\n" + code + "\n```\n\nDone."
    chunks = split_message(text, 2000)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert 0 < len(chunk) <= 2000
        assert open_fence(chunk) is None  # every chunk's fences are balanced
    assert chunks[1].startswith("```python\n")
    assert chunks[0].endswith("\n```")
    body = "".join(chunks)
    for i in range(200):
        assert f"print({i})  # line {i}" in body


def test_unbreakable_text_is_hard_cut_without_empty_chunks() -> None:
    text = "x" * 4500
    chunks = split_message(text, 2000)
    assert [len(c) for c in chunks] == [1996, 1996, 508]
    assert "".join(chunks) == text


@pytest.mark.parametrize("limit", [100, 2000, 4096])
def test_whitespace_never_makes_empty_chunks(limit: int) -> None:
    text = ("word " * 30 + "\n\n\n\n") * 60
    chunks = split_message(text, limit)
    assert all(c.strip() and len(c) <= limit for c in chunks)


def test_a_long_fence_info_string_neither_hangs_nor_explodes() -> None:
    text = "```" + "x" * 2900 + "\n" + "code line\n" * 300 + "```"
    chunks = split_message(text, 2000)
    assert len(chunks) <= 5
    assert all(0 < len(c) <= 2000 for c in chunks)
    reopened = [c for c in chunks[1:] if c.startswith("```")]
    assert all(c.startswith("```\n") for c in reopened)  # the huge info string is dropped


def test_inline_triple_backticks_are_not_a_fence() -> None:
    text = "Run ```print(1)``` then read on. " + "More words here. " * 200
    chunks = split_message(text, 1000)
    assert not any(c.startswith("```") or c.endswith("```") for c in chunks[1:])
    assert open_fence("```print(1)```") is None
    assert open_fence("```python\nx = 1") == "python"


def test_utf16_measure_keeps_emoji_heavy_chunks_within_telegrams_limit() -> None:
    text = ("🙂 smile " * 900).strip()  # each emoji is 2 UTF-16 code units
    chunks = split_message(text, 4096, utf16_length)
    assert all(0 < utf16_length(c) <= 4096 for c in chunks)
    assert max(len(c) for c in split_message(text, 4096)) > 3500  # characters alone...
    assert any(utf16_length(c) > 4096 for c in split_message(text, 4096))  # ...overflow
    assert " ".join(chunks).split() == text.split()
