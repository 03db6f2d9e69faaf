"""One llama.cpp sampler chain per sequence, built from a request's composed profile.

The chain mirrors what llama-cpp-python's ``Llama`` builds for ``create_chat_completion``
(logits processors, repetition penalty over the last 64 tokens, grammar, then greedy at
temperature 0 or top-k, typical, top-p, min-p, temperature and a seeded draw), so the
batched engine and the single-sequence backend sample the same way.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.backends.base import GenerationRequest
from bot.errors import InferenceError

log = logging.getLogger(__name__)

PENALTY_LAST_N = 64
"""Tokens the repetition penalty looks back on (llama-cpp-python's ``last_n_tokens_size``)."""

LogitsProcessor = Callable[
    [npt.NDArray[np.intc], npt.NDArray[np.single]], npt.NDArray[np.single]
]


class SequenceSampler:
    """A sampler chain owned by one sequence; ``close()`` frees it.

    ``processor`` (e.g. banned phrases) runs first on the raw logits, in token id order,
    and sees the sequence's tokens so far through ``history``.
    """

    def __init__(
        self,
        request: GenerationRequest,
        *,
        vocab: Any,
        n_vocab: int,
        history: Callable[[], npt.NDArray[np.intc]],
        processor: LogitsProcessor | None = None,
        seed: int,
    ) -> None:
        import llama_cpp.llama_cpp as lc

        self._lc = lc
        self._n_vocab = n_vocab
        self._history = history
        self._processor = processor
        self.error: BaseException | None = None
        # The callback objects must outlive the chain, which calls them from C.
        self._keep: list[object] = []
        self.chain: Any = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        try:
            self._build(request, vocab, seed)
        except BaseException:
            self.close()
            raise

    def _add(self, sampler: Any) -> None:
        self._lc.llama_sampler_chain_add(self.chain, sampler)

    def _build(self, request: GenerationRequest, vocab: Any, seed: int) -> None:
        lc = self._lc
        if self._processor is not None:
            self._add(self._custom_sampler())
        if request.logit_bias:
            bad = [t for t in request.logit_bias if not 0 <= t < self._n_vocab]
            if bad:
                raise InferenceError(
                    f"The profile's logit bias names token {bad[0]}, which this model does "
                    "not have; fix the layer that sets it."
                )
            biases = (lc.llama_logit_bias * len(request.logit_bias))()
            for i, (token, bias) in enumerate(request.logit_bias.items()):
                biases[i].token = token
                biases[i].bias = bias
            self._add(lc.llama_sampler_init_logit_bias(self._n_vocab, len(biases), biases))
        self._add(lc.llama_sampler_init_penalties(
            self._n_vocab, PENALTY_LAST_N, request.repeat_penalty, 0.0, 0.0
        ))
        if request.grammar:
            grammar = lc.llama_sampler_init_grammar(
                vocab, request.grammar.encode("utf-8"), b"root"
            )
            if not grammar:
                raise InferenceError(
                    "The profile's output grammar is not valid GBNF; fix the layer that sets it."
                )
            self._add(grammar)
        if request.temperature == 0.0:
            self._add(lc.llama_sampler_init_greedy())
        elif request.temperature < 0.0:
            self._add(lc.llama_sampler_init_dist(seed))
        else:
            self._add(lc.llama_sampler_init_top_k(request.top_k))
            self._add(lc.llama_sampler_init_typical(1.0, 1))
            self._add(lc.llama_sampler_init_top_p(request.top_p, 1))
            self._add(lc.llama_sampler_init_min_p(request.min_p, 1))
            self._add(lc.llama_sampler_init_temp(request.temperature))
            self._add(lc.llama_sampler_init_dist(seed))

    def _custom_sampler(self) -> Any:
        """A llama.cpp sampler whose ``apply`` runs ``self._processor`` on the logits."""
        lc = self._lc
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)

        def apply(_sampler: Any, cur_p: Any) -> None:
            # An exception cannot cross into C; keep it and fail the job after sampling.
            try:
                array = cur_p.contents
                size = int(array.size)
                raw = (ctypes.c_char * (size * dtype.itemsize)).from_address(
                    ctypes.addressof(array.data.contents)
                )
                data = np.frombuffer(memoryview(raw), dtype=dtype)
                assert self._processor is not None
                logits = data["logit"]
                ids = data["id"]
                if size == self._n_vocab and ids[0] == 0 and ids[-1] == size - 1:
                    result = self._processor(self._history(), logits)
                    if result is not logits:
                        logits[:] = result
                else:  # someone reordered the candidates; go through a full-vocabulary view
                    full = np.full(self._n_vocab, -np.inf, dtype=np.single)
                    full[ids] = logits
                    logits[:] = self._processor(self._history(), full)[ids]
            except BaseException as error:
                self.error = error

        iface = lc.llama_sampler_i()
        callback = lc.llama_sampler_i_apply(apply)
        iface.apply = callback
        self._keep += [iface, callback, apply]
        # llama.cpp owns the returned sampler (the chain frees it); ``iface`` stays ours.
        return lc.llama_sampler_init(ctypes.pointer(iface), None)

    def sample(self, ctx: Any, index: int) -> int:
        """Sample the next token from the logits at batch ``index`` (and accept it).

        Raises:
            InferenceError: a logits processor failed.
        """
        token = int(self._lc.llama_sampler_sample(self.chain, ctx, index))
        if self.error is not None:
            error, self.error = self.error, None
            log.error("logits processor failed", exc_info=error)
            raise InferenceError(
                f"A banned-phrase filter failed while generating ({type(error).__name__})."
            )
        return token

    def close(self) -> None:
        """Free the chain (and every sampler in it)."""
        if self.chain is not None:
            chain, self.chain = self.chain, None
            self._lc.llama_sampler_free(chain)

