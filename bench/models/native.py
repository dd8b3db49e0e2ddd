"""The `engine: native` decoder: Llama, Qwen2 and Mistral shapes written in plain torch.

It runs the operations transformers' Llama-family classes run (Linear projections, RMSNorm in float32, rotary
embeddings, scaled-dot-product attention with grouped key/value heads, a SwiGLU MLP) under the same parameter
names, and tests/test_native_engine.py checks its logits against transformers' at the same weights. What it leaves
out is the library around them: importing transformers costs 4-7 s of a 2-core machine's start-up (measured
2026-11 with `python -X importtime`), and its per-call mask building goes through its masking utilities.
It serves random weights only; checkpoints (their rope scaling, norms, quirks) run on transformers.

Packed batches (`batching.padding: packed`): the requests' prompts are concatenated into one row with no padding
(`sequence_lengths` gives each one's length); the layers' matmuls run over real tokens only, and attention runs
request by request with SDPA's causal flag, so no request sees another and no kernel works on padding. This is
the unpadded variable-length attention that serving engines run (vLLM, TGI), done with one SDPA call per request:
torch's own variable-length kernel (torch.nn.attention.varlen) runs on CUDA only.

Differences in cost, not in values:
- beyond Mistral's 4096-token window transformers' cache drops the keys no query can see any more, while this one
  keeps and masks them (more cache memory and attention work for prompts over 4096 tokens; none of the shipped
  scenarios has one);
- on the CPU, padded batches spend less outside the kernels: the mask is made additive once per forward rather
  than by SDPA in every layer, and grouped key/value heads go to the kernel as they are rather than copied per
  query head. With these and the rotary and SwiGLU products computed in place, the operators outside matmul and
  attention took 32 ms of a padded tiny-llama forward instead of 40 (torch.profiler, 6 alternating forwards
  each of 4 prompts of 540-600 tokens, 2-core AVX2 EPYC, 2026-11-29).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.nn.functional as F
from torch import nn

from bench.models.architecture import Architecture

# The values transformers' LlamaConfig, Qwen2Config and MistralConfig default to (transformers 5.x): the configs
# recbench builds for random weights (bench.models.build.hf_config) set only shapes, so these are what the
# transformers engine runs with. Values do not change cost; they keep the two engines' logits comparable.
ROPE_THETA = 10_000.0
RMS_NORM_EPS = 1e-6
# Mistral attends to the last 4096 positions only (MistralConfig.sliding_window); Qwen2 leaves its window off.
SLIDING_WINDOW = {"mistral": 4096}
ATTENTION_BIAS = {"qwen2": True}  # Qwen2 has biases on the query, key and value projections


@contextmanager
def initialisation_skipped() -> Iterator[None]:
    """Build modules without torch's default initialisation (their weights are filled afterwards anyway). On the
    meta device, torch's random initialisers go through its Python reference kernels, whose first call imports
    torch._dynamo: 3.4 s of a quickstart run, measured 2026-11-29 on a 2-core AMD EPYC."""
    names = ("kaiming_uniform_", "uniform_", "normal_")
    saved = {name: getattr(nn.init, name) for name in names}
    for name in names:
        setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


class NativeKVCache:
    """Keys and values of every layer, grown by concatenation as transformers' dynamic cache does."""

    def __init__(self) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []

    def length(self) -> int:
        return self.layers[0][0].shape[2] if self.layers else 0

    def update(self, index: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if index == len(self.layers):
            self.layers.append((keys, values))
        else:
            past_keys, past_values = self.layers[index]
            self.layers[index] = (torch.cat([past_keys, keys], dim=2), torch.cat([past_values, values], dim=2))
        return self.layers[index]

    def unpack_to_left_padded(self, lengths: list[int]) -> None:
        """A packed prefill's cache (one row holding every request's keys end to end) laid out again as a
        left-padded batch, in place, so that batched steps after the prompt run as they do after a padded one."""
        width = max(lengths)
        ends = list(accumulate(lengths))

        def padded(states: torch.Tensor) -> torch.Tensor:
            _, heads, _, head_dim = states.shape
            out = states.new_zeros(len(lengths), heads, width, head_dim)
            for row, (length, end) in enumerate(zip(lengths, ends, strict=True)):
                out[row, :, width - length :] = states[0, :, end - length : end]
            return out

        for index, (keys, values) in enumerate(self.layers):  # a layer at a time: one layer's cache held twice
            self.layers[index] = (padded(keys), padded(values))

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Each sequence's cache repeated `repeats` times in place (one prompt shared by its candidates)."""
        self.layers = [
            (k.repeat_interleave(repeats, dim=0), v.repeat_interleave(repeats, dim=0)) for k, v in self.layers
        ]


@dataclass(frozen=True)
class Segment:
    """One request of a packed row: its positions [start, end) and its own mask (None: SDPA's causal flag)."""

    start: int
    end: int
    mask: torch.Tensor | None


@dataclass(frozen=True)
class ForwardContext:
    """What every layer of one forward shares: the rotary cos/sin, the attention mask in the kernel's form
    (NativeCausalLM._kernel_mask; None: causal or no mask needed), the KV cache, and for a packed row its requests
    (attention stays inside each)."""

    rotary: tuple[torch.Tensor, torch.Tensor]
    mask: torch.Tensor | None
    cache: NativeKVCache | None
    segments: tuple[Segment, ...] = ()


@dataclass
class NativeOutput:
    logits: torch.Tensor
    past_key_values: NativeKVCache | None


class RMSNorm(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # Normalised in float32 whatever the model's dtype, as transformers' LlamaRMSNorm does.
        as_float = hidden.float()
        as_float = as_float * torch.rsqrt(as_float.pow(2).mean(-1, keepdim=True) + RMS_NORM_EPS)
        return self.weight * as_float.to(hidden.dtype)


class Rotary(nn.Module):
    """cos and sin of the rotary angles for given positions (RoFormer, arXiv 2104.09864), computed in float32."""

    def __init__(self, head_dim: int, *, device: torch.device | str = "cpu") -> None:
        super().__init__()
        # On the CPU even inside a meta-device context (bench.models.build): the frequencies are real values, and
        # meta arithmetic would import torch._dynamo (see initialisation_skipped).
        exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
        self.register_buffer("inv_freq", 1.0 / (ROPE_THETA**exponents), persistent=False)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions[:, :, None].float() * self.inv_freq[None, None, :]
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos().to(dtype)[:, None], angles.sin().to(dtype)[:, None]  # (B, 1, T, head_dim)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    # x * cos + rotate_half(x) * sin as transformers rounds it (a fused addcmul would round once, not twice), with
    # two fewer temporaries
    return (x * cos).add_(torch.cat([-second, first], dim=-1).mul_(sin))


class Attention(nn.Module):
    def __init__(self, arch: Architecture, index: int, *, eager: bool) -> None:
        super().__init__()
        bias = ATTENTION_BIAS.get(arch.family, False)
        self.index, self.eager = index, eager
        self.heads, self.kv_heads, self.head_dim = arch.num_heads, arch.num_kv_heads, arch.head_dim
        self.q_proj = nn.Linear(arch.hidden_size, arch.num_heads * arch.head_dim, bias=bias)
        self.k_proj = nn.Linear(arch.hidden_size, arch.num_kv_heads * arch.head_dim, bias=bias)
        self.v_proj = nn.Linear(arch.hidden_size, arch.num_kv_heads * arch.head_dim, bias=bias)
        self.o_proj = nn.Linear(arch.num_heads * arch.head_dim, arch.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor, context: ForwardContext) -> torch.Tensor:
        batch, length, _ = hidden.shape
        query = self.q_proj(hidden).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        keys = self.k_proj(hidden).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        values = self.v_proj(hidden).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        query, keys = _rotate(query, *context.rotary), _rotate(keys, *context.rotary)
        if context.cache is not None:
            keys, values = context.cache.update(self.index, keys, values)
        if context.segments:
            parts = [self._attend(*_rows(query, keys, values, segment), segment.mask) for segment in context.segments]
            attended = torch.cat(parts, dim=2)
        else:
            attended = self._attend(query, keys, values, context.mask)
        return self.o_proj(attended.transpose(1, 2).reshape(batch, length, -1))

    def _attend(
        self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention as transformers' sdpa and eager implementations run it, kernel for kernel, except on the CPU
        with a mask: additive (NativeCausalLM._kernel_mask) and over grouped key heads (_grouped_heads_take_a_mask),
        the same values without the per-layer conversion and the copies."""
        groups = self.heads // self.kv_heads
        if self.eager:
            keys, values = _repeat_heads(keys, groups), _repeat_heads(values, groups)
            scores = (query @ keys.transpose(2, 3)) * self.head_dim**-0.5
            if mask is None:
                mask = _causal_mask(past=keys.shape[2] - query.shape[2], length=query.shape[2], device=query.device)
            # The dtype's minimum, not -inf: a query that sees no key (padding) averages over all, as in transformers.
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            return torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype) @ values
        if mask is None:  # nothing padded: SDPA's own causal flag (fused kernels), key heads shared across groups
            return F.scaled_dot_product_attention(
                query, keys, values, is_causal=query.shape[2] > 1, enable_gqa=groups > 1
            )
        if groups > 1 and query.shape[2] == 1 and not torch.compiler.is_compiling():
            # One new token: each key head's group of query heads becomes a query length, so no key copies.
            batch, heads, _, head_dim = query.shape
            packed = query.reshape(batch, self.kv_heads, groups, head_dim)
            return F.scaled_dot_product_attention(packed, keys, values, attn_mask=mask).reshape(batch, heads, 1, -1)
        # A query that sees no key (padding) comes out as zeros: torch's SDPA handles such rows since 2.5.
        if _grouped_heads_take_a_mask(query.device):
            return F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, enable_gqa=groups > 1)
        keys, values = _repeat_heads(keys, groups), _repeat_heads(values, groups)
        return F.scaled_dot_product_attention(query, keys, values, attn_mask=mask)


def _grouped_heads_take_a_mask(device: torch.device) -> bool:
    """Whether SDPA's kernel on `device` takes grouped key heads together with a mask. The CPU's flash kernel does,
    with the same outputs bit for bit (tests/test_native_engine.py) and no copy of the keys and values per query
    head. CUDA's fused kernels take no mask with grouped heads (SDPA would fall back to its math kernel), so there
    the heads are repeated, as transformers repeats them on every device."""
    return device.type == "cpu"


def _rows(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, segment: Segment
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One request's queries, keys and values out of a packed row (views, no copies)."""
    part = slice(segment.start, segment.end)
    return query[:, :, part], keys[:, :, part], values[:, :, part]


def _repeat_heads(states: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, kv_heads, S, D) -> (B, kv_heads * groups, S, D), each key/value head repeated for its query heads."""
    if groups == 1:
        return states
    batch, kv_heads, length, head_dim = states.shape
    expanded = states[:, :, None].expand(batch, kv_heads, groups, length, head_dim)
    return expanded.reshape(batch, kv_heads * groups, length, head_dim)


class MLP(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(arch.hidden_size, arch.intermediate_size, bias=False)
        self.up_proj = nn.Linear(arch.hidden_size, arch.intermediate_size, bias=False)
        self.down_proj = nn.Linear(arch.intermediate_size, arch.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        gated = F.silu(self.gate_proj(hidden))
        return self.down_proj(gated.mul_(self.up_proj(hidden)))  # in place: one (B, T, intermediate) tensor fewer


class DecoderLayer(nn.Module):
    def __init__(self, arch: Architecture, index: int, *, eager: bool) -> None:
        super().__init__()
        self.self_attn = Attention(arch, index, eager=eager)
        self.mlp = MLP(arch)
        self.input_layernorm = RMSNorm(arch.hidden_size)
        self.post_attention_layernorm = RMSNorm(arch.hidden_size)

    def forward(self, hidden: torch.Tensor, context: ForwardContext) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), context)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class DecoderBody(nn.Module):
    """Named `model` inside NativeCausalLM, as in transformers, so parameter names (and checkpoints) match."""

    def __init__(self, arch: Architecture, *, eager: bool) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(arch.vocab_size, arch.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(arch, i, eager=eager) for i in range(arch.num_layers))
        self.norm = RMSNorm(arch.hidden_size)


class NativeCausalLM(nn.Module):
    def __init__(self, arch: Architecture, *, attention: str = "sdpa") -> None:
        super().__init__()
        if attention not in ("sdpa", "eager"):
            raise ValueError(f"attention must be sdpa or eager, got {attention!r}")
        self.architecture = arch
        self.window = SLIDING_WINDOW.get(arch.family)
        self.eager = attention == "eager"
        self.model = DecoderBody(arch, eager=self.eager)
        self.lm_head = nn.Linear(arch.hidden_size, arch.vocab_size, bias=False)
        self.rotary = Rotary(arch.head_dim)
        if arch.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def reset_rotary(self, device: torch.device) -> None:
        """The rotary frequencies, computed again on `device` (a model built on the meta device has none)."""
        self.rotary = Rotary(self.architecture.head_dim, device=device)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: NativeKVCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        sequence_lengths: list[int] | None = None,
    ) -> NativeOutput:
        """The transformers call convention the scorers use; `logits_to_keep=0` keeps every position. A cache is
        returned when one was given or `use_cache` asked for one.

        `sequence_lengths`: `input_ids` is one packed row of requests of these lengths (no padding, no mask, no
        cache before it); logits come back per request, (requests, logits_to_keep, vocab), for each one's last
        positions. A returned cache holds the packed row: NativeKVCache.unpack_to_left_padded lays it out as a
        padded batch for the steps after the prompt."""
        cache = past_key_values if past_key_values is not None else (NativeKVCache() if use_cache else None)
        past = cache.length() if cache is not None else 0
        if sequence_lengths is not None:
            if past:
                raise ValueError("sequence_lengths: a packed row is a prompt, with no past_key_values before it")
            if attention_mask is not None:
                raise ValueError("sequence_lengths: a packed row has no padding, so no attention_mask")
            return self._packed_forward(input_ids, position_ids, cache, sequence_lengths, logits_to_keep)
        length = input_ids.shape[1]
        if position_ids is None:
            position_ids = torch.arange(past, past + length, device=input_ids.device).expand(input_ids.shape[0], -1)
        mask = self._kernel_mask(self._mask(attention_mask, past=past, length=length, device=input_ids.device))
        hidden = self._layers(input_ids, position_ids, mask=mask, cache=cache)
        kept = hidden[:, -logits_to_keep:] if logits_to_keep else hidden
        return NativeOutput(logits=self.lm_head(kept), past_key_values=cache)

    def _layers(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        *,
        mask: torch.Tensor | None,
        cache: NativeKVCache | None,
        segments: tuple[Segment, ...] = (),
    ) -> torch.Tensor:
        """Embeddings, every decoder layer and the final norm: the hidden states of every position."""
        hidden = self.model.embed_tokens(input_ids)
        rotary = self.rotary(position_ids, hidden.dtype)
        context = ForwardContext(rotary=rotary, mask=mask, cache=cache, segments=segments)
        for layer in self.model.layers:
            hidden = layer(hidden, context)
        return self.model.norm(hidden)

    def _packed_forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor | None,
        cache: NativeKVCache | None,
        lengths: list[int],
        logits_to_keep: int,
    ) -> NativeOutput:
        if input_ids.shape[0] != 1 or sum(lengths) != input_ids.shape[1] or min(lengths, default=0) < 1:
            raise ValueError(f"sequence_lengths: {lengths} do not fill one packed row of {input_ids.shape[1]} tokens")
        if not 1 <= logits_to_keep <= min(lengths):
            raise ValueError(f"logits_to_keep: 1 to {min(lengths)} per request of a packed row, not {logits_to_keep}")
        device = input_ids.device
        ends = list(accumulate(lengths))
        if position_ids is None:
            position_ids = torch.cat([torch.arange(n, device=device) for n in lengths])[None]
        masks = {n: self._kernel_mask(self._segment_mask(n, device)) for n in set(lengths)}  # one per length
        segments = tuple(Segment(end - n, end, masks[n]) for n, end in zip(lengths, ends, strict=True))
        hidden = self._layers(input_ids, position_ids, mask=None, cache=cache, segments=segments)
        last = torch.tensor([end - logits_to_keep + i for end in ends for i in range(logits_to_keep)], device=device)
        logits = self.lm_head(hidden[0, last]).view(len(lengths), logits_to_keep, -1)
        return NativeOutput(logits=logits, past_key_values=cache)

    def _kernel_mask(self, allowed: torch.Tensor | None) -> torch.Tensor | None:
        """A boolean mask in the form the attention kernel takes it. SDPA turns a boolean mask into an additive
        one (0 where allowed, -inf elsewhere) on every call, so on the CPU that is done here once per forward
        instead of once per layer; the outputs are the same bit for bit, fully masked (padding) rows included
        (tests/test_native_engine.py). Eager attention takes the booleans; on CUDA the booleans stay too, since
        how its kernels treat a fully masked row of an additive mask is untested here."""
        if allowed is None or self.eager or allowed.device.type != "cpu":
            return allowed
        additive = torch.zeros(allowed.shape, dtype=self.model.embed_tokens.weight.dtype, device=allowed.device)
        return additive.masked_fill_(~allowed, float("-inf"))

    def _segment_mask(self, length: int, device: torch.device) -> torch.Tensor | None:
        """A request's own causal mask where the sliding window cuts into it; None where SDPA's causal flag is exact."""
        if self.window is None or length < self.window:
            return None
        return _causal_mask(past=0, length=length, device=device, window=self.window)

    def _mask(
        self, attention_mask: torch.Tensor | None, *, past: int, length: int, device: torch.device
    ) -> torch.Tensor | None:
        """(B, 1, T, past+T) booleans, True where a query may attend; None where SDPA's causal flag (or, for one
        token, no mask) is exact: nothing padded, no window cut, and no cache or a single new token. transformers
        skips its mask in the same cases, and builds it whenever it is being compiled (no data-dependent branch)."""
        total = past + length
        window_cuts = self.window is not None and total >= self.window
        if (
            (length == 1 or past == 0)
            and not window_cuts
            and not torch.compiler.is_compiling()
            and (attention_mask is None or bool(attention_mask.all()))
        ):
            return None
        allowed = _causal_mask(past=past, length=length, device=device, window=self.window)
        if attention_mask is None:
            return allowed
        return allowed & attention_mask[:, None, None, :].bool()


def _causal_mask(*, past: int, length: int, device: torch.device, window: int | None = None) -> torch.Tensor:
    """(1, 1, T, past+T): query i (at position past+i) sees the keys at or before it, within the sliding window."""
    queries = torch.arange(past, past + length, device=device)[:, None]
    keys = torch.arange(past + length, device=device)[None, :]
    allowed = keys <= queries
    if window is not None:
        allowed &= queries - keys < window
    return allowed[None, None]
