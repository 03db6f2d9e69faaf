"""Tiny models of other architectures for tests: random weights, the bundled tokenizer.

No such model is small enough to bundle, so the tests write them with ``gguf`` (llama.cpp's
own GGUF library):

- a recurrent model (Mamba). Recurrent and hybrid models (Mamba, RWKV; LFM2, Granite 4.0
  H, Nemotron-H mix them with attention) keep one state per sequence instead of a KV cell
  per token, so llama.cpp cannot cut a sequence back to a prefix. Two blocks of width 64,
  and an output layer that only ever prefers one of two words, so replies are visible text;
- an embedding model (BERT), which llama.cpp loads but which writes no text;
- a GPT-2 with a table of 128 positions: llama.cpp aborts the process at the first token
  past the end of such a table;
- an encoder-decoder model (T5), which llama.cpp aborts on when it is decoded without
  its input encoded first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType, PoolingType

WIDTH = 64
BLOCKS = 2
CONV = 4
STATE = 16
STEP_RANK = 4
WORDS = ("ok", "yes")
"""The output layer scores the first by the hidden state's first value and the second by
its negative: every reply is made of these two words."""


class _Tiny:
    """A GGUF being written: its writer, its vocabulary and the random weights' source.

    Every model has `WIDTH` and `BLOCKS`, float32 tensors and ``tokenizer_from``'s
    tokenizer and chat template; `write` puts it all in the file.
    """

    def __init__(self, tokenizer_from: Path, out: Path, arch: str) -> None:
        self.out = out
        self.writer = GGUFWriter(out, arch)
        self.writer.add_embedding_length(WIDTH)
        self.writer.add_block_count(BLOCKS)
        self.writer.add_file_type(LlamaFileType.ALL_F32)
        self.tokens = _copy_tokenizer(GGUFReader(tokenizer_from), self.writer)
        self._rng = np.random.default_rng(0)

    def draw(self, *shape: int, scale: float = 0.02) -> npt.NDArray[np.float32]:
        """Random weights of ``shape``, from the model's own seeded source."""
        return (self._rng.standard_normal(shape) * scale).astype(np.float32)

    def weights(self, name: str, *shape: int) -> None:
        self.writer.add_tensor(name, self.draw(*shape))

    def ones(self, name: str, size: int = WIDTH) -> None:
        self.writer.add_tensor(name, np.ones(size, np.float32))

    def zeros(self, name: str, size: int = WIDTH) -> None:
        self.writer.add_tensor(name, np.zeros(size, np.float32))

    def norm(self, name: str) -> None:
        """A layer norm with its bias."""
        self.ones(name + ".weight")
        self.zeros(name + ".bias")

    def linear(self, name: str, rows: int, columns: int) -> None:
        """A weight matrix with its bias."""
        self.weights(name + ".weight", rows, columns)
        self.zeros(name + ".bias", rows)

    def two_words(self) -> None:
        """The output layer that only ever prefers one of `WORDS`."""
        self.writer.add_tensor("output.weight", _two_words(self.tokens))

    def write(self) -> Path:
        self.writer.write_header_to_file()
        self.writer.write_kv_data_to_file()
        self.writer.write_tensors_to_file()
        self.writer.close()
        return self.out


def write_tiny_mamba(tokenizer_from: Path, out: Path) -> Path:
    """Write the model to ``out``, with ``tokenizer_from``'s tokenizer and chat template."""
    model = _Tiny(tokenizer_from, out, "mamba")
    writer, inner = model.writer, 2 * WIDTH
    writer.add_context_length(2048)
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_ssm_conv_kernel(CONV)
    writer.add_ssm_inner_size(inner)
    writer.add_ssm_state_size(STATE)
    writer.add_ssm_time_step_rank(STEP_RANK)
    writer.add_layer_norm_rms_eps(1e-5)
    model.weights("token_embd.weight", len(model.tokens), WIDTH)
    model.ones("output_norm.weight")
    model.two_words()
    for block in range(BLOCKS):
        name = f"blk.{block}."
        model.ones(name + "attn_norm.weight")
        model.weights(name + "ssm_in.weight", 2 * inner, WIDTH)
        model.weights(name + "ssm_conv1d.weight", inner, CONV)
        model.zeros(name + "ssm_conv1d.bias", inner)
        model.weights(name + "ssm_x.weight", STEP_RANK + 2 * STATE, inner)
        model.weights(name + "ssm_dt.weight", inner, STEP_RANK)
        model.zeros(name + "ssm_dt.bias", inner)
        writer.add_tensor(name + "ssm_a", -np.exp(model.draw(inner, STATE, scale=0.1)))
        model.ones(name + "ssm_d", inner)
        model.weights(name + "ssm_out.weight", WIDTH, inner)
    return model.write()


def write_tiny_bert(tokenizer_from: Path, out: Path) -> Path:
    """Write a two-layer BERT embedding model to ``out`` (mean pooling, no output layer)."""
    model = _Tiny(tokenizer_from, out, "bert")
    writer = model.writer
    feed_forward, positions = 2 * WIDTH, 512
    writer.add_context_length(positions)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(4)
    writer.add_token_type_count(2)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(PoolingType.MEAN)
    model.weights("token_embd.weight", len(model.tokens), WIDTH)
    model.weights("token_types.weight", 2, WIDTH)
    model.weights("position_embd.weight", positions, WIDTH)
    model.norm("token_embd_norm")
    for block in range(BLOCKS):
        name = f"blk.{block}."
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            model.linear(name + part, WIDTH, WIDTH)
        model.norm(name + "attn_output_norm")
        model.norm(name + "layer_output_norm")
        model.linear(name + "ffn_up", feed_forward, WIDTH)
        model.linear(name + "ffn_down", WIDTH, feed_forward)
    return model.write()


def write_tiny_gpt2(tokenizer_from: Path, out: Path, positions: int = 128) -> Path:
    """Write a two-layer GPT-2 trained, as it were, on ``positions`` tokens of context."""
    model = _Tiny(tokenizer_from, out, "gpt2")
    writer = model.writer
    feed_forward = 4 * WIDTH
    writer.add_context_length(positions)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(4)
    writer.add_layer_norm_eps(1e-5)
    model.weights("token_embd.weight", len(model.tokens), WIDTH)
    model.weights("position_embd.weight", positions, WIDTH)
    model.norm("output_norm")
    model.two_words()
    for block in range(BLOCKS):
        name = f"blk.{block}."
        model.norm(name + "attn_norm")
        model.linear(name + "attn_qkv", 3 * WIDTH, WIDTH)
        model.linear(name + "attn_output", WIDTH, WIDTH)
        model.norm(name + "ffn_norm")
        model.linear(name + "ffn_up", feed_forward, WIDTH)
        model.linear(name + "ffn_down", WIDTH, feed_forward)
    return model.write()


def write_tiny_t5(tokenizer_from: Path, out: Path) -> Path:
    """Write a two-layer T5 (an encoder and a decoder) to ``out``."""
    model = _Tiny(tokenizer_from, out, "t5")
    writer = model.writer
    heads, buckets, feed_forward = 4, 32, 2 * WIDTH
    writer.add_context_length(512)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(heads)
    writer.add_key_length(WIDTH // heads)
    writer.add_value_length(WIDTH // heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_relative_attn_buckets_count(buckets)
    writer.add_decoder_start_token_id(0)
    model.weights("token_embd.weight", len(model.tokens), WIDTH)
    model.two_words()
    model.ones("enc.output_norm.weight")
    model.ones("dec.output_norm.weight")
    for block in range(BLOCKS):
        for side in ("enc", "dec"):
            name = f"{side}.blk.{block}."
            model.ones(name + "attn_norm.weight")
            if block == 0:
                model.weights(name + "attn_rel_b.weight", buckets, heads)
            for kind in ["attn"] if side == "enc" else ["attn", "cross_attn"]:
                if kind == "cross_attn":
                    model.ones(name + "cross_attn_norm.weight")
                for part in ("q", "k", "v", "o"):
                    model.weights(f"{name}{kind}_{part}.weight", WIDTH, WIDTH)
            model.ones(name + "ffn_norm.weight")
            model.weights(name + "ffn_up.weight", feed_forward, WIDTH)
            model.weights(name + "ffn_down.weight", WIDTH, feed_forward)
    return model.write()


def _two_words(tokens: list[str]) -> npt.NDArray[np.float32]:
    """An output layer that scores `WORDS` by the hidden state's first value and its
    negative (not by its sum, which a layer norm makes 0)."""
    output = np.zeros((len(tokens), WIDTH), np.float32)
    first, second = (tokens.index(word) for word in WORDS)
    output[first, 0], output[second, 0] = 10.0, -10.0
    return output


def _copy_tokenizer(reader: GGUFReader, writer: GGUFWriter) -> list[str]:
    """Copy every ``tokenizer.*`` field; returns the vocabulary."""
    scalar: dict[GGUFValueType, Any] = {
        GGUFValueType.UINT32: writer.add_uint32, GGUFValueType.INT32: writer.add_int32,
        GGUFValueType.BOOL: writer.add_bool, GGUFValueType.FLOAT32: writer.add_float32,
        GGUFValueType.UINT8: writer.add_uint8,
    }
    tokens: list[str] = []
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            if field.types[-1] == GGUFValueType.STRING:
                values: list[Any] = [bytes(field.parts[i]).decode() for i in field.data]
            else:
                values = [field.parts[i].tolist()[0] for i in field.data]
            if field.name == "tokenizer.ggml.tokens":
                tokens = values
            writer.add_array(field.name, values)
        elif kind == GGUFValueType.STRING:
            writer.add_string(field.name, bytes(field.parts[field.data[0]]).decode())
        else:
            scalar[kind](field.name, field.parts[field.data[0]].tolist()[0])
    return tokens
