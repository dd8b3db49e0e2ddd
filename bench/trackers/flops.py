"""FLOPs counted by torch's FlopCounterMode, per stage, on a calibration batch run outside timed iterations
(the counter intercepts every op, which would distort timings)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count


def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's own SDPA formula (Q@K^T and softmax@V, full rectangle), for the CPU flash kernel that
    FlopCounterMode does not map: without it, attention on the CPU counts as 0 FLOPs."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Kernels torch's counter leaves out, by name, so a torch without one of them still imports.
_EXTRA_FORMULAS = {
    getattr(torch.ops.aten, name): formula
    for name, formula in {"_scaled_dot_product_flash_attention_for_cpu": _cpu_flash_attention_flops}.items()
    if hasattr(torch.ops.aten, name)
}


@dataclass
class FlopResult:
    unit: str = "FLOP"
    method: str = (
        "torch.utils.flop_counter.FlopCounterMode (2*m*n*k per matmul; attention counted over the full "
        "rectangle, causal mask ignored; CPU flash attention mapped to torch's SDPA formula)"
    )
    per_stage: dict[str, int] = field(default_factory=dict)  # FLOPs of one batch, by stage
    # ATen operator calls of one batch by stage, views excluded: in eager mode on a GPU each is at least one
    # kernel launch, which is what a per-launch overhead multiplies.
    ops_per_stage: dict[str, int] = field(default_factory=dict)


class _OpCounter(TorchDispatchMode):
    """Counts the operator calls that reach the kernels (views only re-describe memory: not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.calls += 1
        return func(*args, **(kwargs or {}))


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
        counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
        ops = _OpCounter()
        self._active = True
        try:
            with counter, ops:
                yield
        finally:
            self._active = False
        self.per_stage[name] = self.per_stage.get(name, 0) + counter.get_total_flops()
        self.ops_per_stage[name] = self.ops_per_stage.get(name, 0) + ops.calls

    def result(self) -> FlopResult:
        return FlopResult(per_stage=dict(self.per_stage), ops_per_stage=dict(self.ops_per_stage))
