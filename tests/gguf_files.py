"""A tiny Llama GGUF file for tests: random F32 weights and a byte-level BPE tokenizer, written in milliseconds.

The tokenizer is GPT-2 style ("gpt2" in llama.cpp's naming): the 256 byte tokens spelled in GPT-2's byte
alphabet, a few merges, and two control tokens. transformers builds a working fast tokenizer from that metadata,
and byte-level BPE encodes any text, so the tests can round-trip ASCII without a trained vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
from transformers.convert_slow_tokenizer import bytes_to_unicode

HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
INTERMEDIATE = 128
CONTEXT = 128
# Merges of common English pairs, in GPT-2's byte alphabet ("Ġ" is the space byte).
MERGES = ("Ġ t", "h e", "i n", "e r", "a n", "Ġt he", "o n", "r e")
SPECIAL_TOKENS = ("<|endoftext|>", "<|pad|>")


def tiny_vocabulary() -> tuple[list[str], list[int]]:
    """Tokens and their llama.cpp token types: 256 bytes, one token per merge, then the control tokens."""
    byte_tokens = [bytes_to_unicode()[byte] for byte in range(256)]
    merged = ["".join(merge.split(" ")) for merge in MERGES]
    tokens = [*byte_tokens, *merged, *SPECIAL_TOKENS]
    types = [gguf.TokenType.NORMAL] * (len(byte_tokens) + len(merged)) + [gguf.TokenType.CONTROL] * len(SPECIAL_TOKENS)
    return tokens, [int(token_type) for token_type in types]


def _llama_tensors(vocab_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """llama.cpp tensor names with transformers' (out, in) shapes; GGUFWriter reverses them to ggml order."""
    head_dim = HIDDEN // HEADS
    kv_dim = KV_HEADS * head_dim

    def weight(*shape: int) -> np.ndarray:
        return rng.uniform(-0.05, 0.05, size=shape).astype(np.float32)

    tensors = {"token_embd.weight": weight(vocab_size, HIDDEN), "output_norm.weight": np.ones(HIDDEN, np.float32)}
    for layer in range(LAYERS):
        block = f"blk.{layer}"
        tensors |= {
            f"{block}.attn_norm.weight": np.ones(HIDDEN, np.float32),
            f"{block}.attn_q.weight": weight(HIDDEN, HIDDEN),
            f"{block}.attn_k.weight": weight(kv_dim, HIDDEN),
            f"{block}.attn_v.weight": weight(kv_dim, HIDDEN),
            f"{block}.attn_output.weight": weight(HIDDEN, HIDDEN),
            f"{block}.ffn_norm.weight": np.ones(HIDDEN, np.float32),
            f"{block}.ffn_gate.weight": weight(INTERMEDIATE, HIDDEN),
            f"{block}.ffn_up.weight": weight(INTERMEDIATE, HIDDEN),
            f"{block}.ffn_down.weight": weight(HIDDEN, INTERMEDIATE),
        }
    # No output.weight: transformers then ties the LM head to the embeddings, as small Llamas do.
    return tensors


def write_tiny_gguf(path: Path, *, seed: int = 0) -> None:
    """Write a 2-layer Llama (hidden 64, 4 heads, 2 KV heads) GGUF that transformers can load; the seed picks
    the weights, so two seeds give two files with different bytes."""
    tokens, token_types = tiny_vocabulary()
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("recbench-tiny-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(list(MERGES))
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|endoftext|>"))
    writer.add_pad_token_id(tokens.index("<|pad|>"))
    writer.add_add_bos_token(False)

    for name, array in _llama_tensors(len(tokens), np.random.default_rng(seed)).items():
        writer.add_tensor(name, array)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
