"""FLOPs counted with torch's FLOP formulas, per stage, on a calibration batch run outside timed iterations
(counting intercepts every op, which would distort timings)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_flop_count, shape_wrapper


def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's own SDPA formula (Q@K^T and softmax@V, full rectangle), for the CPU flash kernel that
    torch's registry does not map: without it, attention on the CPU counts as 0 FLOPs. Grouped key/value heads
    (enable_gqa) are counted as the query heads they serve: the work is the same, and older releases of torch's
    formula refuse fewer key heads than query heads (2.13's accepts them and counts the same)."""
    heads = query_shape[1]
    return sdpa_flop_count(
        query_shape, (key_shape[0], heads, *key_shape[2:]), (value_shape[0], heads, *value_shape[2:])
    )


# Kernels torch's counter leaves out, by name, so a torch without one of them still imports.
_EXTRA_FORMULAS = {
    getattr(torch.ops.aten, name): shape_wrapper(formula)
    for name, formula in {"_scaled_dot_product_flash_attention_for_cpu": _cpu_flash_attention_flops}.items()
    if hasattr(torch.ops.aten, name)
}
FORMULAS: dict[Any, Any] = {**flop_registry, **_EXTRA_FORMULAS}

# Queries about a tensor's layout, not computation: passed over as FlopCounterMode passes them over.
_METADATA_QUERIES = frozenset(
    getattr(getattr(torch.ops.aten, packet), overload)
    for packet, overload in [
        ("sym_is_contiguous", "default"),
        ("is_contiguous", "default"),
        ("is_contiguous", "memory_format"),
        ("is_strides_like_format", "default"),
        ("is_non_overlapping_and_dense", "default"),
        ("size", "default"),
        ("sym_size", "default"),
        ("stride", "default"),
        ("sym_stride", "default"),
        ("storage_offset", "default"),
        ("sym_storage_offset", "default"),
        ("numel", "default"),
        ("sym_numel", "default"),
        ("dim", "default"),
    ]
    if hasattr(getattr(torch.ops.aten, packet, None), overload)
) | ({torch.ops.prim.layout.default} if hasattr(torch.ops.prim, "layout") else frozenset())


@dataclass
class FlopResult:
    unit: str = "FLOP"
    method: str = (
        "torch.utils.flop_counter's formulas, as FlopCounterMode applies them (2*m*n*k per matmul; attention "
        "counted over the full rectangle, causal mask ignored; CPU flash attention mapped to torch's SDPA formula)"
    )
    per_stage: dict[str, int] = field(default_factory=dict)  # FLOPs of one batch, by stage
    # ATen operator calls of one batch by stage, views excluded: in eager mode on a GPU each is at least one
    # kernel launch, which is what a per-launch overhead multiplies.
    ops_per_stage: dict[str, int] = field(default_factory=dict)


def _matrix_matmul_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    """aten.matmul of two operands of 2 or more dimensions, (..., m, k) @ (..., k, n): 2*m*k*n for each matrix
    product of the broadcast batch, which is what its mm or bmm decomposition is counted as."""
    *batch_a, m, k = a_shape
    *batch_b, _, n = b_shape
    width = max(len(batch_a), len(batch_b))
    padded = [[1] * (width - len(batch)) + list(batch) for batch in (batch_a, batch_b)]
    # Broadcast by hand: torch.broadcast_shapes imports sympy too. The op ran, so the shapes are compatible.
    return 2 * math.prod(max(pair) for pair in zip(*padded, strict=True)) * m * k * n


_MATRIX_MATMUL = shape_wrapper(_matrix_matmul_flops)


def _matmul_formula(func, args) -> Any:
    """The formula for a matmul of matrices (vectors keep torch's decomposition). Counting it directly rather than
    through torch's Python decomposition of matmul spares that decomposition's import of sympy (0.6-0.8 s, once per
    process), with the same count: tests/test_native_engine.py compares it with FlopCounterMode's."""
    if func._overloadpacket is torch.ops.aten.matmul and all(
        isinstance(a, torch.Tensor) and a.dim() >= 2 for a in args[:2]
    ):
        return _MATRIX_MATMUL
    return None


class _CountingMode(TorchDispatchMode):
    """FLOPs and operator calls, counted as torch's FlopCounterMode counts FLOPs: an operator torch has no
    formula for is decomposed where it can be, and what runs is counted by its formula. Operator calls are
    those that reach the mode from outside, before any decomposition; views only re-describe memory and are
    not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0
        self.calls = 0
        self._decomposing = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # By default torch wraps a mode's __torch_dispatch__ to keep Dynamo out, which imports torch._dynamo on
        # the first operator: 2.4-2.6 s on this project's 2-core machines (python -X importtime, 2026-11-29),
        # as long as importing torch itself. Nothing runs compiled in here: FLOPs are counted before levers apply.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA_QUERIES:
            return NotImplemented
        if not self._decomposing and not func.is_view:
            self.calls += 1
        formula = FORMULAS.get(func._overloadpacket) or _matmul_formula(func, args)
        if formula is None:
            self._decomposing += 1
            try:
                with self:
                    decomposed = func.decompose(*args, **kwargs)
            finally:
                self._decomposing -= 1
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


class FlopTracker:
    """Same `stage(name)` interface as the latency tracker, so the loop runs unchanged under it.

    Only the stages named in `count` are counted (an enclosing end-to-end stage would otherwise swallow
    them); a stage opened inside a counted one is attributed to the outer stage: one counter at a time.
    """

    def __init__(self, count: Iterable[str]) -> None:
        self.count = frozenset(count)
        self.per_stage: dict[str, int] = {}
        self.ops_per_stage: dict[str, int] = {}
        self._active = False

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._active or name not in self.count:
            yield
            return
        counter = _CountingMode()
        self._active = True
        try:
            with counter:
                yield
        finally:
            self._active = False
        self.per_stage[name] = self.per_stage.get(name, 0) + counter.flops
        self.ops_per_stage[name] = self.ops_per_stage.get(name, 0) + counter.calls

    def result(self) -> FlopResult:
        return FlopResult(per_stage=dict(self.per_stage), ops_per_stage=dict(self.ops_per_stage))
