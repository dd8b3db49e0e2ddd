"""How far recbench's GPU projections are from published measurements (`recbench validate-projections`).

Each row of bench/hardware/published_gpu_measurements.yaml is a public figure measured by an inference engine on a
catalogue GPU (model, dtype, batch, input and output tokens, the figure, its source and date). Its workload is
projected the way `report` projects a measured point onto a GPU tier with no GPU calibration: the analytic FLOPs
and bytes of every forward (bench.models.analytic) against the tier's catalogue peak and bandwidth times its
catalogue efficiencies, each forward never faster than its engine's kernel-launch floor (bench/hardware/
engines.yaml). The error is projected / published - 1 of the row's own metric.

Workloads, as the engines' benchmarks run them:
- generation with a static batch B, I input and O output tokens: one prefill forward of B x I tokens, then O - 1
  decode steps of B tokens each over a growing context; output tokens/s = B x O / the total time;
- `ttft_ms`: the prefill forward alone; `tpot_ms`: the mean decode step;
- a serving benchmark at concurrency C is taken as a static batch of C (continuous batching, same shapes);
- batch `max` (an engine filling the GPU with requests): as many sequences of I + O tokens as fit in the
  engine's share of memory after the weights (MEMORY_FRACTION).

Physics check: no projected batch-1 decode step may be faster than reading the weights once at the catalogue's
peak bandwidth; a published figure faster than that is reported too (it would mean a mislabelled row).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.core.dtypes import catalogue_key
from bench.core.errors import InputError
from bench.core.yaml_files import read_yaml
from bench.cost.projection import OPS_OUTSIDE_LAYERS, Efficiency, llm_time
from bench.hardware.engines import Engine, load_engines
from bench.hardware.tiers import Tier, peak_flops
from bench.models.analytic import ForwardShape, forward_parts, kv_cache_bytes, weights_bytes
from bench.models.architecture import Architecture
from bench.models.presets import get_preset

MEASUREMENTS_PATH = Path(__file__).parents[1] / "hardware" / "published_gpu_measurements.yaml"
# The share of GPU memory an engine gives weights + KV cache: vLLM's gpu_memory_utilization defaults to 0.9
# (https://docs.vllm.ai/en/latest/configuration/engine_args.html, read 2026-11). That rule is applied to every
# `max` row; TensorRT-LLM's free_gpu_memory_fraction takes 0.9 of what the weights leave, slightly more.
MEMORY_FRACTION = 0.9
TARGET_MEDIAN_ABS_ERROR = 0.30  # the goal for the median absolute error
EXPLAIN_BEYOND = 2.0  # rows projected more than this factor away from the published figure need an explanation
Metric = Literal["output_tokens_per_s", "ttft_ms", "tpot_ms"]


class PublishedMeasurement(BaseModel):
    """One public measurement, as the data file states it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=120)
    tier: str  # the catalogue tier of the GPU measured
    gpu: str  # as published
    engine: str  # name and version, as published
    engine_model: str  # the engines.yaml entry whose launch overhead models this engine
    model: str  # as published
    preset: str  # the architecture preset with the model's shapes
    dtype: Literal["fp32", "bf16", "fp16", "fp8"]
    batch: int | Literal["max"] = Field(union_mode="left_to_right")
    input_tokens: int = Field(ge=0, le=1_000_000)
    output_tokens: int = Field(ge=0, le=1_000_000)
    metric: Metric
    value: float = Field(gt=0)
    unit: str  # as published
    source: str = Field(pattern=r"^https://")
    date: str
    notes: str = ""
    explanation: str | None = None  # why the projection is far off (required beyond EXPLAIN_BEYOND)
    skip: str | None = None  # why this row cannot be projected (it stays listed, outside the error figures)


@dataclass(frozen=True)
class RowProjection:
    row: PublishedMeasurement
    projected: float | None  # in the row's metric; None for a skipped row
    batch: int | None  # the batch projected (resolves "max")
    bound: str  # what bounds the dominant forward: compute, memory or launch
    weight_read_floor_s: float  # weights once at peak bandwidth: no batch-1 decode step is faster
    physics_ok: bool  # the projected batch-1 decode step respects that floor
    published_physics_ok: bool  # so does the published figure, where it is a batch-1 decode figure

    @property
    def error(self) -> float | None:
        return None if self.projected is None else self.projected / self.row.value - 1

    @property
    def beyond(self) -> bool:
        """Projected more than EXPLAIN_BEYOND times too high or too low."""
        ratio = None if self.projected is None else self.projected / self.row.value
        return ratio is not None and not (1 / EXPLAIN_BEYOND <= ratio <= EXPLAIN_BEYOND)


@dataclass(frozen=True)
class ValidationSummary:
    rows: list[RowProjection]

    @property
    def projected(self) -> list[RowProjection]:
        return [r for r in self.rows if r.error is not None]

    @property
    def median_abs_error(self) -> float:
        return statistics.median(abs(r.error or 0.0) for r in self.projected)

    @property
    def gpu_types(self) -> list[str]:
        return sorted({r.row.tier for r in self.projected})

    @property
    def unexplained(self) -> list[RowProjection]:
        return [r for r in self.rows if r.beyond and not r.row.explanation]

    @property
    def physics_violations(self) -> list[RowProjection]:
        return [r for r in self.rows if not r.physics_ok]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measurements: list[PublishedMeasurement] = Field(max_length=10_000)


@functools.cache
def load_measurements(path: Path = MEASUREMENTS_PATH) -> tuple[PublishedMeasurement, ...]:
    """The data file's rows, checked (InputError naming the file, the row and the field)."""
    raw = read_yaml(path)
    try:
        rows = _File.model_validate(raw).measurements
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InputError(f"{path}: {where}: {error['msg']}") from None
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise InputError(f"{path}: measurement {row.id!r} appears twice")
        seen.add(row.id)
    return tuple(rows)


def validate_projections(
    tiers: Mapping[str, Tier], measurements: tuple[PublishedMeasurement, ...] | None = None
) -> ValidationSummary:
    rows = load_measurements() if measurements is None else measurements
    engines = load_engines()
    for row in rows:
        if row.tier not in tiers:
            raise InputError(f"published measurement {row.id}: unknown tier {row.tier!r}")
        if row.engine_model not in engines:
            raise InputError(f"published measurement {row.id}: unknown engine_model {row.engine_model!r}")
    return ValidationSummary([project_row(row, tiers[row.tier], engines[row.engine_model]) for row in rows])


def project_row(row: PublishedMeasurement, tier: Tier, engine: Engine) -> RowProjection:
    arch = get_preset(row.preset)
    floor = weights_bytes(arch, dtype=row.dtype) / tier.bandwidth_bytes_per_s
    one_step = _forward_time(arch, ForwardShape(batch=1, new_tokens=1, context=1, logits=1), row.dtype, tier, engine)
    base = {"row": row, "weight_read_floor_s": floor, "physics_ok": one_step[0] >= floor}
    published_ok = True
    if row.batch == 1 and row.metric == "tpot_ms":
        published_ok = row.value / 1e3 >= floor
    elif row.batch == 1 and row.metric == "output_tokens_per_s" and row.input_tokens == 0:
        published_ok = 1 / row.value >= floor
    if row.skip:
        return RowProjection(projected=None, batch=None, bound="", published_physics_ok=published_ok, **base)
    batch = _batch(row, arch, tier)
    projected, bound = _project_metric(row, arch, batch, tier, engine)
    return RowProjection(projected=projected, batch=batch, bound=bound, published_physics_ok=published_ok, **base)


def _batch(row: PublishedMeasurement, arch: Architecture, tier: Tier) -> int:
    if row.batch != "max":
        return row.batch
    kv_per_sequence = kv_cache_bytes(arch, tokens=row.input_tokens + row.output_tokens, dtype=row.dtype)
    room = tier.memory_bytes * MEMORY_FRACTION - weights_bytes(arch, dtype=row.dtype)
    if room < kv_per_sequence:
        raise InputError(f"published measurement {row.id}: {row.preset} in {row.dtype} leaves no room for one sequence")
    return math.floor(room / kv_per_sequence)


def _forward_time(arch: Architecture, shape: ForwardShape, dtype: str, tier: Tier, engine: Engine) -> tuple[float, str]:
    peak = peak_flops(tier, dtype)
    if not peak:
        raise InputError(f"tier {tier.name} lists no {catalogue_key(dtype)} peak")
    ops = arch.num_layers * engine.ops_per_layer + OPS_OUTSIDE_LAYERS
    timing = llm_time(
        parts=forward_parts(arch, [shape], dtype=dtype),
        peak=peak,
        bandwidth=tier.bandwidth_bytes_per_s,
        efficiency=Efficiency(tier.compute_efficiency, tier.memory_efficiency, "catalogue default"),
        launch_floor_s=engine.floor_s(forwards=1, ops_per_forward=ops),
    )
    return timing.seconds, timing.bound


def _decode_step(
    row: PublishedMeasurement, arch: Architecture, batch: int, context: int, tier: Tier, engine: Engine
) -> tuple[float, str]:
    shape = ForwardShape(batch=batch, new_tokens=1, context=context, logits=1)
    return _forward_time(arch, shape, row.dtype, tier, engine)


def _project_metric(
    row: PublishedMeasurement, arch: Architecture, batch: int, tier: Tier, engine: Engine
) -> tuple[float, str]:
    prefill = (0.0, "")
    if row.input_tokens:
        shape = ForwardShape(batch=batch, new_tokens=row.input_tokens, context=row.input_tokens, logits=1)
        prefill = _forward_time(arch, shape, row.dtype, tier, engine)
    if row.metric == "ttft_ms":
        return prefill[0] * 1e3, prefill[1]
    # Decode: one token per sequence per step over a context of everything before it and itself. After a prompt,
    # the prefill gave the first output token; llama-bench's generation test (no prompt) decodes every token.
    if row.input_tokens:
        contexts = range(row.input_tokens + 1, row.input_tokens + row.output_tokens)
    else:
        contexts = range(1, row.output_tokens + 1)
    steps = [_decode_step(row, arch, batch, context, tier, engine) for context in contexts]
    decode_s = sum(s for s, _ in steps)
    bound = Counter(b for _, b in steps).most_common(1)[0][0] if steps else prefill[1]
    if row.metric == "tpot_ms":
        return decode_s / max(1, len(steps)) * 1e3, bound
    return batch * row.output_tokens / (prefill[0] + decode_s), bound


def median_abs_error_by_metric(summary: ValidationSummary) -> dict[str, float]:
    """The median absolute error of each metric's rows (throughput and latency err in different directions)."""
    found: dict[str, list[float]] = {}
    for r in summary.projected:
        found.setdefault(r.row.metric, []).append(abs(r.error or 0.0))
    return {metric: statistics.median(errors) for metric, errors in sorted(found.items())}
