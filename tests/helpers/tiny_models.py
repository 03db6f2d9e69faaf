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


def write_tiny_mamba(tokenizer_from: Path, out: Path) -> Path:
    """Write the model to ``out``, with ``tokenizer_from``'s tokenizer and chat template."""
    reader = GGUFReader(tokenizer_from)
    writer = GGUFWriter(out, "mamba")
    writer.add_context_length(2048)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(BLOCKS)
    writer.add_feed_forward_length(0)
    writer.add_head_count(0)
    writer.add_ssm_conv_kernel(CONV)
    writer.add_ssm_inner_size(2 * WIDTH)
    writer.add_ssm_state_size(STATE)
    writer.add_ssm_time_step_rank(STEP_RANK)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(LlamaFileType.ALL_F32)
    tokens = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(0)

    def weights(*shape: int, scale: float = 0.02) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inner = 2 * WIDTH
    writer.add_tensor("token_embd.weight", weights(len(tokens), WIDTH))
    writer.add_tensor("output_norm.weight", np.ones(WIDTH, np.float32))
    writer.add_tensor("output.weight", _two_words(tokens))
    for block in range(BLOCKS):
        name = f"blk.{block}."
        writer.add_tensor(name + "attn_norm.weight", np.ones(WIDTH, np.float32))
        writer.add_tensor(name + "ssm_in.weight", weights(2 * inner, WIDTH))
        writer.add_tensor(name + "ssm_conv1d.weight", weights(inner, CONV))
        writer.add_tensor(name + "ssm_conv1d.bias", np.zeros(inner, np.float32))
        writer.add_tensor(name + "ssm_x.weight", weights(STEP_RANK + 2 * STATE, inner))
        writer.add_tensor(name + "ssm_dt.weight", weights(inner, STEP_RANK))
        writer.add_tensor(name + "ssm_dt.bias", np.zeros(inner, np.float32))
        writer.add_tensor(name + "ssm_a", -np.exp(weights(inner, STATE, scale=0.1)))
        writer.add_tensor(name + "ssm_d", np.ones(inner, np.float32))
        writer.add_tensor(name + "ssm_out.weight", weights(WIDTH, inner))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_tiny_bert(tokenizer_from: Path, out: Path) -> Path:
    """Write a two-layer BERT embedding model to ``out`` (mean pooling, no output layer)."""
    reader = GGUFReader(tokenizer_from)
    writer = GGUFWriter(out, "bert")
    feed_forward, positions = 2 * WIDTH, 512
    writer.add_context_length(positions)
    writer.add_embedding_length(WIDTH)
    writer.add_feed_forward_length(feed_forward)
    writer.add_block_count(BLOCKS)
    writer.add_head_count(4)
    writer.add_token_type_count(2)
    writer.add_layer_norm_eps(1e-12)
    writer.add_causal_attention(False)
    writer.add_pooling_type(PoolingType.MEAN)
    writer.add_file_type(LlamaFileType.ALL_F32)
    tokens = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(0)

    def weights(*shape: int) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def norm(name: str) -> None:
        writer.add_tensor(name + ".weight", np.ones(WIDTH, np.float32))
        writer.add_tensor(name + ".bias", np.zeros(WIDTH, np.float32))

    writer.add_tensor("token_embd.weight", weights(len(tokens), WIDTH))
    writer.add_tensor("token_types.weight", weights(2, WIDTH))
    writer.add_tensor("position_embd.weight", weights(positions, WIDTH))
    norm("token_embd_norm")
    for block in range(BLOCKS):
        name = f"blk.{block}."
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{name}{part}.weight", weights(WIDTH, WIDTH))
            writer.add_tensor(f"{name}{part}.bias", np.zeros(WIDTH, np.float32))
        norm(name + "attn_output_norm")
        norm(name + "layer_output_norm")
        writer.add_tensor(name + "ffn_up.weight", weights(feed_forward, WIDTH))
        writer.add_tensor(name + "ffn_up.bias", np.zeros(feed_forward, np.float32))
        writer.add_tensor(name + "ffn_down.weight", weights(WIDTH, feed_forward))
        writer.add_tensor(name + "ffn_down.bias", np.zeros(WIDTH, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_tiny_gpt2(tokenizer_from: Path, out: Path, positions: int = 128) -> Path:
    """Write a two-layer GPT-2 trained, as it were, on ``positions`` tokens of context."""
    reader = GGUFReader(tokenizer_from)
    writer = GGUFWriter(out, "gpt2")
    feed_forward = 4 * WIDTH
    writer.add_context_length(positions)
    writer.add_embedding_length(WIDTH)
    writer.add_feed_forward_length(feed_forward)
    writer.add_block_count(BLOCKS)
    writer.add_head_count(4)
    writer.add_layer_norm_eps(1e-5)
    writer.add_file_type(LlamaFileType.ALL_F32)
    tokens = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(0)

    def weights(*shape: int) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def layer(name: str, rows: int, columns: int) -> None:
        writer.add_tensor(name + ".weight", weights(rows, columns))
        writer.add_tensor(name + ".bias", np.zeros(rows, np.float32))

    def norm(name: str) -> None:
        writer.add_tensor(name + ".weight", np.ones(WIDTH, np.float32))
        writer.add_tensor(name + ".bias", np.zeros(WIDTH, np.float32))

    writer.add_tensor("token_embd.weight", weights(len(tokens), WIDTH))
    writer.add_tensor("position_embd.weight", weights(positions, WIDTH))
    norm("output_norm")
    writer.add_tensor("output.weight", _two_words(tokens))
    for block in range(BLOCKS):
        name = f"blk.{block}."
        norm(name + "attn_norm")
        layer(name + "attn_qkv", 3 * WIDTH, WIDTH)
        layer(name + "attn_output", WIDTH, WIDTH)
        norm(name + "ffn_norm")
        layer(name + "ffn_up", feed_forward, WIDTH)
        layer(name + "ffn_down", WIDTH, feed_forward)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_tiny_t5(tokenizer_from: Path, out: Path) -> Path:
    """Write a two-layer T5 (an encoder and a decoder) to ``out``."""
    reader = GGUFReader(tokenizer_from)
    writer = GGUFWriter(out, "t5")
    heads, buckets, feed_forward = 4, 32, 2 * WIDTH
    writer.add_context_length(512)
    writer.add_embedding_length(WIDTH)
    writer.add_feed_forward_length(feed_forward)
    writer.add_block_count(BLOCKS)
    writer.add_head_count(heads)
    writer.add_key_length(WIDTH // heads)
    writer.add_value_length(WIDTH // heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_relative_attn_buckets_count(buckets)
    writer.add_decoder_start_token_id(0)
    writer.add_file_type(LlamaFileType.ALL_F32)
    tokens = _copy_tokenizer(reader, writer)
    rng = np.random.default_rng(0)

    def weights(*shape: int) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    def ones() -> npt.NDArray[np.float32]:
        return np.ones(WIDTH, np.float32)

    writer.add_tensor("token_embd.weight", weights(len(tokens), WIDTH))
    writer.add_tensor("output.weight", _two_words(tokens))
    writer.add_tensor("enc.output_norm.weight", ones())
    writer.add_tensor("dec.output_norm.weight", ones())
    for block in range(BLOCKS):
        for side in ("enc", "dec"):
            name = f"{side}.blk.{block}."
            attention = ["attn"] if side == "enc" else ["attn", "cross_attn"]
            writer.add_tensor(name + "attn_norm.weight", ones())
            if block == 0:
                writer.add_tensor(name + "attn_rel_b.weight", weights(buckets, heads))
            for kind in attention:
                if kind == "cross_attn":
                    writer.add_tensor(name + "cross_attn_norm.weight", ones())
                for part in ("q", "k", "v", "o"):
                    writer.add_tensor(f"{name}{kind}_{part}.weight", weights(WIDTH, WIDTH))
            writer.add_tensor(name + "ffn_norm.weight", ones())
            writer.add_tensor(name + "ffn_up.weight", weights(feed_forward, WIDTH))
            writer.add_tensor(name + "ffn_down.weight", weights(WIDTH, feed_forward))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


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
