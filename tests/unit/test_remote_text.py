"""Remote replies as text: thinking removed, stops cut, estimates safe, bodies per kind."""

from __future__ import annotations

import pytest

from bot.backends.base import GenerationRequest
from bot.backends.remote.kinds import chat_body
from bot.backends.remote.text import _cut_at_stops, estimate_tokens, most_tokens
from bot.reasoning import ThinkingFilter


def through(pieces: list[str]) -> str:
    thinking = ThinkingFilter()
    return "".join(thinking.feed(p) for p in pieces) + thinking.flush()


@pytest.mark.parametrize("pieces", [
    ["<think>plan the answer</think>\n\nParis is the capital."],
    ["<th", "ink>plan", " the answer</thi", "nk>", "\n\nParis", " is the capital."],
    ["<", "t", "h", "i", "n", "k", ">", "x", "<", "/", "think", ">", "Paris is the capital."],
])
def test_thinking_is_never_shown_however_it_is_split(pieces: list[str]) -> None:
    assert through(pieces) == "Paris is the capital."


def test_an_unclosed_thought_shows_nothing() -> None:
    assert through(["<think>I will never", " finish"]) == ""


def test_text_that_only_looks_like_a_tag_start_is_shown() -> None:
    assert through(["a <b> and 1 < 2", " <th"]) == "a <b> and 1 < 2 <th"


def test_thinking_in_the_middle_is_dropped_too() -> None:
    assert through(["Sure. <think>hmm</think>Here it is."]) == "Sure. Here it is."


def test_stops_are_cut_even_across_pieces() -> None:
    shown, held, stopped = _cut_at_stops("Hello wor", ["world"])
    assert (shown, held, stopped) == ("Hello ", "wor", False)
    shown, held, stopped = _cut_at_stops(held + "ld and more", ["world"])
    assert (shown, stopped) == ("", True)


@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog.",
    "3.14159265358979323846264338327950288419716939937510",
    "日本語のテキストはトークンが多い",
    "emoji 🎉🎉🎉 and ünïcödé",
    "def f(x):\n    return {'a': [1, 2, 3]}\n",
])
def test_guesses_bound_the_byte_level_worst_case_and_estimates_stay_near_prose(
        text: str) -> None:
    # The bound: a token per byte (the model test checks the bundled tokenizer itself).
    assert most_tokens(text) == len(text.encode()) + 1
    assert len(text.encode()) / 4 <= estimate_tokens(text) <= most_tokens(text)


def test_llama_server_gets_grammar_slot_cache_and_bias() -> None:
    request = GenerationRequest(messages=(), grammar='root ::= "yes"', stop=("\n",),
                                top_k=12, seed=7)
    body = chat_body("llama-server", request, model="m", max_tokens=9,
                     messages=[{"role": "user", "content": "hi"}], logit_bias={42: -100.0},
                     slot=3)
    assert body["grammar"] == 'root ::= "yes"'
    assert body["logit_bias"] == {"42": -100.0}
    assert body["id_slot"] == 3 and body["cache_prompt"] is True
    assert body["top_k"] == 12 and body["seed"] == 7 and body["stop"] == ["\n"]
    assert body["stream"] is True and body["max_tokens"] == 9


def test_vllm_gets_structured_outputs_and_its_penalty_name() -> None:
    request = GenerationRequest(messages=(), grammar="root ::= x", repeat_penalty=1.3)
    body = chat_body("vllm", request, model="m", max_tokens=9, messages=[], logit_bias={})
    assert body["structured_outputs"] == {"grammar": "root ::= x"}
    assert body["repetition_penalty"] == 1.3
    assert "grammar" not in body and "repeat_penalty" not in body


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_plain_openai_kinds_get_only_what_they_accept(kind: str) -> None:
    request = GenerationRequest(messages=(), grammar="root ::= x",
                                stop=("a", "b", "c", "d", "e"))
    body = chat_body(kind, request, model="m", max_tokens=9,  # type: ignore[arg-type]
                     messages=[], logit_bias={1: -100.0})
    assert not {"grammar", "logit_bias", "top_k", "min_p", "id_slot"} & set(body)
    assert body["stream_options"] == {"include_usage": True}
    if kind == "openai":
        assert body["stop"] == ["a", "b", "c", "d"]
