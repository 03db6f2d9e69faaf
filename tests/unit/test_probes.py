"""Probes: judging replies as the hard rules do, and running them through the queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from bot.backends.base import GenerationRequest
from bot.probes import PROBE_SEED, ProbeRunner, judge, summarise
from bot.queue import InferenceQueue
from bot.reply import ChatLimits
from profiles import Layer, Rules, compose, load_builtin_library
from profiles.cards import card_layer, read_card
from profiles.models import RefuseRule
from profiles.probes import OwnedProbe, Probe, stack_probes
from tests.helpers.cards import CARDS
from tests.helpers.fake_backend import FakeBackend, last_user_text


def probe(**values: object) -> Probe:
    return Probe.model_validate({"name": "p", "prompt": "Say something.", **values})


def test_must_not_contain_is_folded_like_the_hard_rules() -> None:
    never = probe(must_not_contain=["damn", "wikipedia.org"])
    for reply in ("d4mn it", "D A M N", "what the dámn", "damned", "see wikipedia dot org"):
        assert judge(never, reply, False), reply
    for reply in ("Amsterdam is nice", "▇▇▇ it", "[link removed]"):
        assert judge(never, reply, False) == (), reply


def test_each_expectation_is_judged() -> None:
    assert judge(probe(must_refuse=True), "Sure!", False) == ("was not refused",)
    assert judge(probe(must_refuse=True), "That topic isn't for here.", True) == ()
    assert judge(probe(must_match="^(yes|no)$"), "Yes", False) == ()
    assert judge(probe(must_match="^(yes|no)$"), "yes, because", False) == (
        "does not match ^(yes|no)$",)
    assert judge(probe(max_chars=5), "123456", False) == ("6 characters, more than 5",)


def test_a_probe_must_expect_something_valid() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        probe()
    with pytest.raises(ValidationError, match="regular expression"):
        probe(must_match="(")


def test_a_stack_carries_its_profiles_and_layers_probes() -> None:
    library = load_builtin_library()
    kids = library.profile("kids")
    labels = [o.label for o in stack_probes(library.stack(kids.layers), kids)]
    assert labels[0] == "kids/clean-story"
    assert {"family-friendly/refuses-adult-topics", "family-friendly/never-swears",
            "no-links/shows-no-link", "concise/stays-short"} <= set(labels)
    yes_no = library.profile("yes-no")
    assert "yes-no/yes-or-no-only" in [o.label for o in stack_probes(
        library.stack(yes_no.layers), yes_no)]


@pytest.fixture
async def queue(backend: FakeBackend) -> AsyncIterator[InferenceQueue]:
    queue = InferenceQueue(backend, user_rate=1)
    await queue.start()
    yield queue
    await queue.stop()


def owned(**values: object) -> OwnedProbe:
    return OwnedProbe(probe(**values), "layer test")


@pytest.mark.parametrize("backend", [FakeBackend(
    lambda r: "Well damn, visit https://example.org now! " + last_user_text(r) * 40)])
async def test_probe_replies_are_filtered_and_cut_like_chat_replies(
        queue: InferenceQueue, backend: FakeBackend) -> None:
    kids = load_builtin_library()
    plan = compose(kids.stack(kids.profile("kids").layers))
    runner = ProbeRunner(queue, backend.count_tokens, ChatLimits())
    result = await runner.run_one(plan, owned(must_not_contain=["damn", "example.org"],
                                              max_chars=600), "test/guild/c/")
    assert result.passed, result
    assert "damn" not in result.reply and "[link removed]" in result.reply
    assert len(result.reply) <= 600
    request = backend.requests[-1]
    assert request.seed == PROBE_SEED and request.session is not None
    refused = await runner.run_one(plan, owned(must_refuse=True, prompt="show me porn"), "x")
    assert refused.refused and refused.passed and len(backend.requests) == 1


async def test_probes_wait_behind_members_replies() -> None:
    backend = FakeBackend(gated=True)
    queue = InferenceQueue(backend, user_rate=1)
    await queue.start()
    try:
        first = queue.submit(GenerationRequest(messages=()), "c1", "ann")
        await backend.wait_for_requests(1)
        runner = ProbeRunner(queue, backend.count_tokens, ChatLimits())
        plan = compose([Layer(name="x", description="x", prompt="probe stack")])
        probing = asyncio.create_task(runner.run_one(plan, owned(max_chars=100), "c2"))
        await asyncio.sleep(0)
        # Submitted after the probe, a member's request still starts before it.
        second = queue.submit(GenerationRequest(messages=()), "c3", "bob")
        backend.release(3)
        result = await probing
        assert result.passed
        assert [r.messages[0].content if r.messages else "member" for r in backend.requests
                ] == ["member", "member", "probe stack"]
        async for _ in first.events():
            pass
        async for _ in second.events():
            pass
    finally:
        await queue.stop()


async def test_a_failing_probe_is_summarised_with_its_reply(queue: InferenceQueue,
                                                            backend: FakeBackend) -> None:
    plan = compose([Layer(name="x", description="x",
                          rules=Rules(refuse=(RefuseRule(pattern="nope"),)))])
    runner = ProbeRunner(queue, backend.count_tokens, ChatLimits())
    results = await runner.run(plan, [
        owned(name="short", max_chars=5), OwnedProbe(probe(name="refuse", must_refuse=True,
                                                           prompt="nope"), "profile kids")],
        "place")
    assert [r.passed for r in results] == [False, True]
    text = summarise(results)
    assert text.startswith("❌ 1 of 2 probes failed:")
    assert "test/short (≤ 5 chars): FAIL: 28 characters, more than 5 — the reply: " \
           "'Hello from the fake backend.'" in text
    assert summarise(results[1:]) == "✅ The probe passed."
    assert summarise(results[1:] * 2) == "✅ All 2 probes passed."


async def test_probes_see_lorebook_entries_their_prompt_triggers(
        queue: InferenceQueue, backend: FakeBackend) -> None:
    mira = card_layer(read_card((CARDS / "mira.v2.png").read_bytes(), "mira")).layer
    runner = ProbeRunner(queue, backend.count_tokens, ChatLimits())
    await runner.run_one(compose([mira]), owned(prompt="Is there a kraken?", max_chars=99),
                         "p")
    request = backend.requests[-1]
    assert "kraken that lives beyond the Teeth" in request.messages[0].content
    assert request.messages[-1].content.endswith("mention the weather at sea.")
