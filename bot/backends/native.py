"""Thin typed wrappers over llama-cpp-python's low-level bindings for the batched engine.

``Vocabulary`` is a loaded model's tokenizer, token texts and chat format (the
single-sequence engine reads its prompts through one too); ``NativeModel`` is the loaded
weights with their ``Vocabulary``; ``NativeContext`` is one llama.cpp context with a
sequence per KV stream and the batch buffer fed to ``llama_decode``. Only the engine's
worker thread decodes; tokenizing reads the vocabulary only and is safe from any thread.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bot.backends.base import ChatMessage
from bot.backends.chat_format import AUTO, ChatFormat, ModelSpecials, choose_format
from bot.backends.control_tokens import ControlTokenGuard
from bot.errors import ConfigError, DecodeFailedError, InferenceError

log = logging.getLogger(__name__)

_PIECE_BUFFER = 256


def trained_window(path: Path, n_ctx: int, trained: int) -> int:
    """``n_ctx`` (CABOT_N_CTX), or the context the model was trained on when that is less.

    Beyond it lie positions the model never learnt, and one with a table of positions
    (GPT-2 and its kin) aborts the whole process at the first token past its end.
    """
    if 0 < trained < n_ctx:
        log.warning("%s was trained on a context of %d tokens, less than CABOT_N_CTX=%d: "
                    "each conversation is kept within %d", path.name, trained, n_ctx, trained)
        return trained
    return n_ctx


class Vocabulary:
    """A loaded model's vocabulary and chat format, read through llama.cpp's low-level API.

    Both engines build their prompts through one of these, so the same conversation gives
    the same tokens on either. Building it scans the whole vocabulary once (about a second
    for a 262k-token one): do it in the thread that loads the model. It does not own the
    model; tokenizing reads the vocabulary only and is safe from any thread.

    Args:
        model: a ``llama_model`` pointer.
        chat_format: ``CABOT_CHAT_FORMAT`` (see ``chat_format``).

    Raises:
        ConfigError: the model does not generate text (an embedding or encoder model), or
            ``chat_format`` names no known format or usable template file.
    """

    def __init__(self, model: Any, *, chat_format: str = AUTO) -> None:
        import llama_cpp.llama_cpp as lc

        self._lc = lc
        self.model: Any = model
        self._check_generates()
        self.vocab: Any = lc.llama_model_get_vocab(model)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab))
        self.vocab_texts: list[str] = [
            self.piece(i).decode("utf-8", errors="ignore") for i in range(self.n_vocab)
        ]
        """The generated text of every token id (control tokens as "")."""
        self.control_guard = ControlTokenGuard.for_vocabulary(self.vocab_texts, self.token_text)
        """Escapes control-token spellings in chat text."""
        self.chat: ChatFormat = choose_format(chat_format, self.specials(), self.control_guard)
        log.info("chat format: %s", self.chat.name)

    def meta(self, key: str) -> str | None:
        """The GGUF metadata value ``key``, as text (None when the file has none)."""
        buffer = ctypes.create_string_buffer(256)
        size = self._lc.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer))
        return buffer.value.decode("utf-8", errors="replace") if size >= 0 else None

    def _check_generates(self) -> None:
        """Refuse a model cabot cannot generate with. llama.cpp loads an embedding model
        (BERT and its kin, whose attention sees the whole input) and every reply would
        come back empty; an encoder-decoder model (T5) needs its input encoded apart, and
        decoding without that aborts the whole process."""
        arch = self.meta("general.architecture") or "unknown"
        encoder = self._lc.llama_model_has_encoder(self.model)
        if encoder and self._lc.llama_model_has_decoder(self.model):
            raise ConfigError(
                f"CABOT_MODEL is an encoder-decoder model ({arch}); cabot runs models that "
                "only decode, as chat, instruct and base models do: point it at one of those."
            )
        if encoder or self.meta(f"{arch}.attention.causal") == "false":
            raise ConfigError(
                f"CABOT_MODEL is an embedding or encoder model ({arch}), which reads text "
                "but does not write it; point it at a model that generates text (an "
                "instruct or base model)."
            )

    def specials(self) -> ModelSpecials:
        """The GGUF's chat template and the spellings of its BOS and EOS tokens."""
        lc = self._lc
        template = lc.llama_model_chat_template(self.model, None)
        eos = int(lc.llama_vocab_eos(self.vocab))
        bos = int(lc.llama_vocab_bos(self.vocab))
        return ModelSpecials(
            template=template.decode("utf-8") if template else None,
            bos=self.token_text(bos) if bos != -1 else "",
            eos=self.token_text(eos) if eos != -1 else "",
            add_bos=bool(lc.llama_vocab_get_add_bos(self.vocab)) and bos != -1,
        )

    def token_text(self, token: int) -> str:
        """The vocabulary entry of ``token`` (special tokens by name)."""
        return str(self._lc.llama_vocab_get_text(self.vocab, token).decode("utf-8"))

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS; ``special`` parses control tokens like <|im_end|>)."""
        data = text.encode("utf-8")
        capacity = len(data) + 8
        buffer = (self._lc.llama_token * capacity)()
        n = self._lc.llama_tokenize(self.vocab, data, len(data), buffer, capacity, False, special)
        if n < 0:  # cannot happen with one token per byte of room, but be exact
            capacity = -n
            buffer = (self._lc.llama_token * capacity)()
            n = self._lc.llama_tokenize(
                self.vocab, data, len(data), buffer, capacity, False, special
            )
        return list(buffer[:n])

    def piece(self, token: int) -> bytes:
        """The bytes ``token`` stands for in generated text (special tokens as nothing)."""
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        n = self._lc.llama_token_to_piece(self.vocab, token, buffer, _PIECE_BUFFER, 0, False)
        return buffer.raw[: max(n, 0)]

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Generated text of ``tokens``."""
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="ignore")

    def is_end(self, token: int) -> bool:
        """Whether ``token`` ends generation (end of turn or of text)."""
        return bool(self._lc.llama_vocab_is_eog(self.vocab, token))

    def chat_prompt(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt tokens for ``messages``, ending with the assistant's turn opening.

        Raises:
            InferenceError: the chat format cannot express the conversation.
        """
        return self.tokenize(self.chat.render(messages), special=True)


class NativeModel(Vocabulary):
    """A GGUF model loaded through llama.cpp, with its vocabulary and chat format.

    Args:
        path: the GGUF file.
        chat_format: ``CABOT_CHAT_FORMAT`` (see ``chat_format``).

    Raises:
        InferenceError: the file is not a model llama.cpp can load.
        ConfigError: ``chat_format`` names no known format or usable template file.
    """

    def __init__(self, path: Path, *, chat_format: str = AUTO) -> None:
        import llama_cpp  # noqa: F401 - installs llama-cpp-python's log callback
        import llama_cpp.llama_cpp as lc

        # Like ``Llama(verbose=False)``: llama.cpp's own chatter goes nowhere.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        lc.llama_backend_init()
        params = lc.llama_model_default_params()
        model = lc.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not model:
            raise InferenceError(
                f"Cannot load the model {path.name}; check that CABOT_MODEL is a valid GGUF file."
            )
        try:
            super().__init__(model, chat_format=chat_format)
        except BaseException:
            lc.llama_model_free(model)
            raise
        self.n_ctx_train = int(lc.llama_model_n_ctx_train(self.model))

    def close(self) -> None:
        """Free the weights."""
        if self.model:
            model, self.model = self.model, None
            self._lc.llama_model_free(model)


MICRO_BATCH = 64
"""Tokens llama.cpp computes at once (``n_ubatch``); a longer batch is split into these."""

KV_TYPES = {"f16": 1, "q8_0": 8}
"""``CABOT_KV_TYPE`` values and their ``ggml_type`` (GGML_TYPE_F16, GGML_TYPE_Q8_0)."""


class NativeContext:
    """One llama.cpp context with ``n_seqs`` sequences and the batch buffer.

    Without ``kv_tokens`` each sequence has its own KV stream of ``n_ctx_seq`` cells and
    attends only over them, laid out by position, so its numbers do not depend on what
    other sequences share the batch: replies at temperature 0 are identical alone, in a
    batch and on the single engine, wherever llama.cpp's CPU kernels compute several
    tokens with the rounding of one (not so on an AVX-512 CPU for Gemma 3, whose logits in
    a batch of four differ from alone by up to about 0.8: a reply may part after a near
    tie). With ``kv_tokens`` every sequence shares one unified
    cache of that many cells (the slot table keeps the accounts); each still reads only
    its own cells, but llama.cpp sums over the whole cache in SIMD lanes, so where a
    sequence's cells sit changes the rounding and a reply can differ after a near tie.
    ``kv_type`` q8_0 stores keys in 8 bits (values stay f16): a quarter less memory.
    ``flash_attn`` is llama.cpp's flash attention, whose CPU kernel skips the cells a
    sequence's mask hides: in the shared cache a sequence reads its own cells, not every
    resident conversation's.
    """

    def __init__(
        self,
        model: NativeModel,
        *,
        n_seqs: int,
        n_ctx_seq: int,
        n_batch: int,
        n_threads: int,
        n_threads_batch: int,
        kv_tokens: int | None = None,
        kv_type: str = "f16",
        flash_attn: bool = False,
    ) -> None:
        lc = model._lc
        self._lc = lc
        self.model = model
        params = lc.llama_context_default_params()
        params.n_ctx = kv_tokens if kv_tokens else n_ctx_seq * n_seqs
        params.n_batch = n_batch
        # llama.cpp sizes its attention buffers for a full micro-batch over the whole
        # cache (KQ alone: cells x n_ubatch x heads floats, over 100 MiB at 5,632 x 512 on the
        # bundled model); prompts evaluate in chunks of this many tokens as fast.
        params.n_ubatch = min(n_batch, MICRO_BATCH)
        params.n_seq_max = n_seqs
        # llama.cpp uses ``n_threads`` for a batch of one token, ``n_threads_batch`` otherwise.
        params.n_threads = n_threads
        params.n_threads_batch = n_threads_batch
        params.kv_unified = bool(kv_tokens)
        # Only the K cache is quantized: llama.cpp quantizes V only with flash attention,
        # and its CPU flash attention over a q8_0 cache gives SmolLM2 (the bundled model)
        # garbage in this llama.cpp (see ``BatchedBackend``).
        params.type_k = KV_TYPES[kv_type]
        params.type_v = KV_TYPES["f16"]
        # The single-sequence backend runs without it unless CABOT_FLASH_ATTN=on: with the
        # same choice in both, replies at temperature 0 stay identical between them.
        params.flash_attn_type = (lc.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                  else lc.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        params.no_perf = True
        self.ctx: Any = lc.llama_init_from_model(model.model, params)
        if not self.ctx:
            raise InferenceError(
                f"Cannot create a llama.cpp context of {params.n_ctx} KV tokens for "
                f"{n_seqs} sequences; lower CABOT_KV_TOKENS, CABOT_PARALLEL, "
                "CABOT_RESIDENT_CHANNELS or CABOT_N_CTX."
            )
        self.memory: Any = lc.llama_get_memory(self.ctx)
        self.n_ctx_seq = min(int(lc.llama_n_ctx_seq(self.ctx)), n_ctx_seq)
        """The most tokens one sequence may hold (a channel's context window)."""
        self.n_cells = int(lc.llama_n_ctx(self.ctx))
        """KV cells of the whole cache."""
        self.unified = bool(params.kv_unified) and not (
            lc.llama_model_is_recurrent(model.model) or lc.llama_model_is_hybrid(model.model))
        """One KV cache shared by every sequence, which llama.cpp splits a batch of in
        order: prompt chunks and generation tokens of several sequences may share a call
        (a recurrent state is split by sequence instead)."""
        self.n_batch = n_batch
        self.n_ubatch = int(params.n_ubatch)
        """Tokens llama.cpp computes in one pass; a longer call is split into these."""
        self._batch: Any = lc.llama_batch_init(n_batch, 0, 1)
        self._tokens = np.ctypeslib.as_array(self._batch.token, shape=(n_batch,))
        self._pos = np.ctypeslib.as_array(self._batch.pos, shape=(n_batch,))
        self._n_seq_id = np.ctypeslib.as_array(self._batch.n_seq_id, shape=(n_batch,))
        self._logits = np.ctypeslib.as_array(self._batch.logits, shape=(n_batch,))
        self._n_seq_id[:] = 1

    def close(self) -> None:
        """Free the batch buffer and the context."""
        if self.ctx:
            ctx, self.ctx = self.ctx, None
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(ctx)

    def copy(self, source: int, target: int) -> None:
        """Make sequence ``target`` hold a copy of sequence ``source``'s KV.

        Across streams llama.cpp copies the whole stream, at the start of the next decode;
        in a unified cache both sequences just share the cells. ``forget`` the target's
        tail afterwards to keep only a prefix.
        """
        self._lc.llama_memory_seq_cp(self.memory, source, target, -1, -1)

    def forget(self, seq_id: int, start: int = 0) -> bool:
        """Drop sequence ``seq_id``'s KV from position ``start`` on.

        False when the model's memory cannot drop part of a sequence: a recurrent model
        (Mamba, RWKV) or a hybrid one keeps one state per sequence, not a cell per token.
        The sequence's memory is then unknown; forget it from 0, which never fails.
        """
        return bool(self._lc.llama_memory_seq_rm(self.memory, seq_id, start, -1))

    def decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """Evaluate ``(seq_id, position, token, wants_logits)`` entries in one call.

        Raises:
            DecodeFailedError: llama.cpp refused or failed the batch.
        """
        n = len(entries)
        if not 0 < n <= self.n_batch:
            raise ValueError(f"a batch holds 1 to {self.n_batch} tokens, not {n}")
        seq_ids = self._batch.seq_id
        for i, (seq_id, position, token, logits) in enumerate(entries):
            self._tokens[i] = token
            self._pos[i] = position
            seq_ids[i][0] = seq_id
            self._logits[i] = logits
        self._run(n)

    def decode_chunk(self, seq_id: int, start: int, tokens: Sequence[int]) -> None:
        """Evaluate prompt ``tokens`` of one sequence from position ``start``; logits for the last.

        Raises:
            DecodeFailedError: llama.cpp refused or failed the chunk.
        """
        n = len(tokens)
        if not 0 < n <= self.n_batch:
            raise ValueError(f"a chunk holds 1 to {self.n_batch} tokens, not {n}")
        self._tokens[:n] = tokens
        self._pos[:n] = np.arange(start, start + n, dtype=np.int32)
        seq_ids = self._batch.seq_id
        for i in range(n):
            seq_ids[i][0] = seq_id
        self._logits[:n] = 0
        self._logits[n - 1] = 1
        self._run(n)

    def _run(self, n: int) -> None:
        """Decode the first ``n`` entries of the batch buffer."""
        self._batch.n_tokens = n
        code = int(self._lc.llama_decode(self.ctx, self._batch))
        if code != 0:
            raise DecodeFailedError(code)

    def logits(self, index: int) -> npt.NDArray[np.single]:
        """A copy of the logits at batch ``index`` of the last decode (for tests)."""
        pointer = self._lc.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.model.n_vocab,)).copy()
