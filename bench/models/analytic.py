"""Analytic parameter, FLOP and memory counts from an architecture. These are estimates from formulas,
labelled as such wherever they appear; measured counts come from bench.trackers.flops."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.dtypes import dtype_bytes
from bench.models.architecture import Architecture


@dataclass(frozen=True)
class ForwardShape:
    """One model forward: `batch` sequences, each adding `new_tokens` to a `context` of that many tokens in
    total (cache included), computing logits for the last `logits` positions.

    A packed forward (`batching.padding: packed`) is one row (batch 1) of several requests' prompts end to end:
    `segments` holds their lengths, new_tokens and context their sum, and each request attends only within
    itself and gets its own `logits` positions."""

    batch: int
    new_tokens: int
    context: int
    logits: int
    keeps_cache: bool = True  # False when the forward runs with use_cache=False (no KV cache is kept)
    segments: tuple[int, ...] = ()

    @property
    def sequences(self) -> int:
        """Requests in the forward: the packed segments, or the batch's rows."""
        return len(self.segments) or self.batch

    @property
    def attended_pairs(self) -> int:
        """(query, key) pairs per attention head, over the full rectangle of each sequence."""
        if self.segments:
            return sum(length * length for length in self.segments)
        return self.batch * self.new_tokens * self.context


def linear_params(arch: Architecture) -> int:
    """Weights of the matmuls inside the layers: Q, K, V, O projections and the SwiGLU MLP."""
    kv_dim = arch.num_kv_heads * arch.head_dim
    attention = 2 * arch.hidden_size * arch.hidden_size + 2 * arch.hidden_size * kv_dim
    mlp = 3 * arch.hidden_size * arch.intermediate_size
    return arch.num_layers * (attention + mlp)


def total_params(arch: Architecture) -> int:
    """All parameters: embeddings, layer matmuls, QKV biases (Qwen2), RMSNorm scales, LM head."""
    embedding = arch.vocab_size * arch.hidden_size
    lm_head = 0 if arch.tie_embeddings else embedding
    kv_dim = arch.num_kv_heads * arch.head_dim
    qkv_bias = arch.num_layers * (arch.hidden_size + 2 * kv_dim) if arch.family == "qwen2" else 0
    norms = (2 * arch.num_layers + 1) * arch.hidden_size
    return embedding + lm_head + linear_params(arch) + qkv_bias + norms


def forward_flops(arch: Architecture, shape: ForwardShape) -> dict[str, int]:
    """FLOPs of one forward, by part (estimate).

    - linear: 2 FLOPs per weight per token (Kaplan et al. 2020, arXiv:2001.08361, C_forward ~ 2N).
    - attention: Q@K^T and softmax@V, 2 * 2 * new_tokens * context * d_attn per layer and sequence
      (PaLM, arXiv:2204.02311, appendix B). The full rectangle is counted, causal mask ignored, as torch's
      FlopCounterMode does; a causal kernel does about half of it.
    - lm_head: 2 * d_model * vocab per position whose logits are computed.
    Norms, softmax, activations and embedding lookups are not counted (as in FlopCounterMode).
    """
    tokens = shape.batch * shape.new_tokens
    d_attn = arch.num_heads * arch.head_dim
    return {
        "linear": 2 * linear_params(arch) * tokens,
        "attention": 4 * arch.num_layers * shape.attended_pairs * d_attn,
        "lm_head": 2 * arch.hidden_size * arch.vocab_size * shape.sequences * shape.logits,
    }


def total_forward_flops(arch: Architecture, shapes: list[ForwardShape]) -> int:
    return sum(sum(forward_flops(arch, shape).values()) for shape in shapes)


def kv_cache_bytes(arch: Architecture, *, tokens: int, dtype: str) -> int:
    """K and V for every layer: 2 * layers * kv_heads * head_dim * bytes per cached token."""
    per_token = 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * dtype_bytes(dtype)
    return per_token * tokens


def weights_bytes(arch: Architecture, *, dtype: str) -> int:
    return total_params(arch) * dtype_bytes(dtype)


def activation_bytes_estimate(arch: Architecture, shape: ForwardShape, *, dtype: str) -> int:
    """Peak transient activations of one forward (rough estimate): one layer's live tensors (residual,
    Q/K/V/O and the MLP's gate, up and product), plus float32 logits. Attention scores are not
    materialised by SDPA's fused kernels, so they are left out."""
    tokens = shape.batch * shape.new_tokens
    per_token = (4 * arch.hidden_size + 3 * arch.intermediate_size) * dtype_bytes(dtype)
    logits = shape.sequences * shape.logits * arch.vocab_size * 4
    return tokens * per_token + logits


def memory_estimate(arch: Architecture, shapes: list[ForwardShape], *, dtype: str) -> dict[str, int]:
    """Weights + the largest KV cache and activations of any forward in the list (estimate)."""
    kv = max(kv_cache_bytes(arch, tokens=s.batch * s.context, dtype=dtype) if s.keeps_cache else 0 for s in shapes)
    activations = max(activation_bytes_estimate(arch, s, dtype=dtype) for s in shapes)
    weights = weights_bytes(arch, dtype=dtype)
    return {
        "weights_bytes": weights,
        "kv_cache_bytes": kv,
        "activations_bytes": activations,
        "total_bytes": weights + kv + activations,
    }


@dataclass(frozen=True)
class PartWork:
    """One kind of operator in the LLM's work, for a per-operator roofline: its FLOPs and memory traffic
    (estimates; bytes None where an older result did not record them)."""

    name: str  # linear, attention or lm_head
    flops: float
    bytes_moved: float | None


def forward_bytes_by_part(arch: Architecture, shape: ForwardShape, *, dtype: str) -> dict[str, int]:
    """Memory traffic of one forward by part (estimate, for roofline projection): every layer weight is streamed
    once and activations go in and out of memory once per layer (linear); the KV cache is read over the whole
    context and written for the new tokens (attention); the LM head's table is read when logits are computed,
    and float32 logits are written (lm_head)."""
    size = dtype_bytes(dtype)
    kv_dim = arch.num_kv_heads * arch.head_dim
    tokens = shape.batch * shape.new_tokens
    per_layer = tokens * (4 * arch.hidden_size + 3 * arch.intermediate_size) * size
    kv_per_token = 2 * arch.num_layers * kv_dim * size
    lm_head = arch.vocab_size * arch.hidden_size * size if shape.logits else 0
    return {
        "linear": linear_params(arch) * size + per_layer * arch.num_layers,
        "attention": kv_per_token * shape.batch * (shape.context + shape.new_tokens),
        "lm_head": lm_head + shape.sequences * shape.logits * arch.vocab_size * 4,
    }


def forward_bytes_moved(arch: Architecture, shape: ForwardShape, *, dtype: str) -> int:
    """Memory traffic of one forward, all parts together (estimate)."""
    return sum(forward_bytes_by_part(arch, shape, dtype=dtype).values())


def forward_parts(arch: Architecture, shapes: list[ForwardShape], *, dtype: str) -> list[PartWork]:
    """FLOPs and bytes of each forward, kind by kind (estimates): one PartWork per forward and kind, never pooled
    across forwards, since a compute-bound prefill and a memory-bound decode step run one after the other."""
    parts = []
    for shape in shapes:
        flops = forward_flops(arch, shape)
        moved = forward_bytes_by_part(arch, shape, dtype=dtype)
        parts += [PartWork(name, flops[name], moved[name]) for name in flops]
    return parts


def total_forward_bytes(arch: Architecture, shapes: list[ForwardShape], *, dtype: str) -> int:
    return sum(forward_bytes_moved(arch, shape, dtype=dtype) for shape in shapes)
