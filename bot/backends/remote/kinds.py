"""What each kind of OpenAI-compatible server can do, and the request body it is sent.

Every kind streams ``/v1/chat/completions`` over server-sent events; they differ in the
sampling controls they accept beyond OpenAI's, in whether they can tokenize (for exact
prompt budgets and for banning whole-word tokens by logit bias), and in what they report
about themselves:

    kind              grammar          logit_bias  tokenize            capacity, context
    llama-server      ``grammar``      yes         ``/tokenize``       ``/props`` slots, n_ctx
    llama-cpp-python  ``grammar``      yes         ``/extras/tokenize``  one at a time
    vllm              structured_outputs  yes      ``/tokenize``       ``max_model_len``
    ollama            -                -           -                   configured
    openai            -                -           -                   configured

A hosted OpenAI-style API takes ``logit_bias`` too, but in its own tokenizer's ids, which
cabot cannot look up: banned words stay with the stream filter there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bot.backends.base import GenerationRequest, SamplingRule

ServerKind = Literal["llama-server", "llama-cpp-python", "vllm", "ollama", "openai"]
KINDS: tuple[ServerKind, ...] = ("llama-server", "llama-cpp-python", "vllm", "ollama", "openai")

OPENAI_MAX_STOPS = 4
"""OpenAI's API takes at most four stop sequences; cabot cuts at the others itself."""


@dataclass(frozen=True)
class KindTraits:
    """What one kind of server accepts and reports.

    Attributes:
        enforces: the hard rules it applies at sampling.
        tokenizes: it has a tokenize endpoint (exact prompt budgets, banned-word tokens).
        exclusive: any request to it (even a tokenize or a model list) interrupts a reply
            it is streaming, so cabot sends it nothing else while a job runs there.
        slots: it reports slots and takes ``id_slot`` and ``cache_prompt``.
        usage: ask for ``usage`` in the stream, to learn how far the estimate is off.
    """

    enforces: frozenset[SamplingRule]
    tokenizes: bool
    exclusive: bool = False
    slots: bool = False
    usage: bool = False


TRAITS: dict[ServerKind, KindTraits] = {
    "llama-server": KindTraits(frozenset({"banned", "grammar", "stop", "max_tokens"}),
                               tokenizes=True, slots=True),
    "llama-cpp-python": KindTraits(frozenset({"banned", "grammar", "stop", "max_tokens"}),
                                   tokenizes=True, exclusive=True),
    "vllm": KindTraits(frozenset({"banned", "grammar", "stop", "max_tokens"}), tokenizes=True),
    "ollama": KindTraits(frozenset({"stop", "max_tokens"}), tokenizes=False, usage=True),
    "openai": KindTraits(frozenset({"stop", "max_tokens"}), tokenizes=False, usage=True),
}


def chat_body(
    kind: ServerKind,
    request: GenerationRequest,
    *,
    model: str,
    max_tokens: int,
    messages: list[dict[str, str]],
    logit_bias: dict[int, float],
    slot: int | None = None,
) -> dict[str, Any]:
    """The JSON body of a streamed chat completion for ``kind``.

    ``messages`` and ``max_tokens`` are the request's after context fitting;
    ``logit_bias`` holds the request's own biases and the banned words' tokens.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
    }
    stops = list(request.stop)
    if stops:
        body["stop"] = stops[:OPENAI_MAX_STOPS] if kind == "openai" else stops
    if request.seed is not None:
        body["seed"] = request.seed
    traits = TRAITS[kind]
    if traits.usage:
        body["stream_options"] = {"include_usage": True}
    if kind in ("llama-server", "llama-cpp-python"):
        body.update(top_k=request.top_k, min_p=request.min_p,
                    repeat_penalty=request.repeat_penalty)
    elif kind == "vllm":
        body.update(top_k=request.top_k, min_p=request.min_p,
                    repetition_penalty=request.repeat_penalty)
    if request.grammar is not None:
        if kind in ("llama-server", "llama-cpp-python"):
            body["grammar"] = request.grammar
        elif kind == "vllm":
            body["structured_outputs"] = {"grammar": request.grammar}
    if logit_bias and kind in ("llama-server", "llama-cpp-python", "vllm"):
        body["logit_bias"] = {str(token): bias for token, bias in logit_bias.items()}
    if kind == "llama-server":
        body["cache_prompt"] = True
        if slot is not None:
            body["id_slot"] = slot
    return body
