"""The metrics `recbench compare` reports and `recbench check` gates on: names, extractors, units and direction.

| name | from the result | worse when |
|---|---|---|
| `latency.<stage>.p50`, `latency.<stage>.p99` | percentile of `latency.samples.<stage>` (seconds) | higher |
| `latency.p50`, `latency.p99` | the same for `end_to_end` | higher |
| `throughput` | `summary.throughput.requests_per_s` | lower |
| `memory.peak_rss` | `memory.measured.rss_peak` (bytes) | higher |
| `memory.cuda_peak` | `memory.measured.cuda_peak_allocated` (bytes, GPU runs) | higher |
| `flops`, `flops.<stage>` | `summary.flops.stages.*.counted_flops` (sum, or one stage) | higher |
| `energy.per_request` | `energy.joules_per_request` | higher |
| `cost.per_1m` | USD per 1M recommendations on the measured tier (bench.cost.api.costs_for) | higher |

Latency and throughput have raw samples (throughput is batch size / median end-to-end latency, so it is
tested on the end-to-end samples); the others are one value per result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.compare.pairing import LoadedResult
from bench.errors import InputError
from bench.stats import summarize

END_TO_END = "end_to_end"
STAGES = ("preprocess", "interest", "candidates", "scoring", "rank_feedback", END_TO_END)  # plus llm_* sub-stages
PERCENTILES = ("p50", "p99")
ALIASES = {f"latency.{p}": f"latency.{END_TO_END}.{p}" for p in PERCENTILES}
_STAGE_NAME = re.compile(r"^(?:preprocess|interest|candidates|scoring|rank_feedback|end_to_end|llm_[a-z0-9_]+)$")


@dataclass(frozen=True)
class MetricSpec:
    name: str  # canonical, e.g. latency.end_to_end.p99
    unit: str  # display unit
    scale: float  # display value = raw value x scale
    higher_is_worse: bool
    up: str  # the word for an increase: "slower", "higher", "more"
    down: str  # the word for a decrease: "faster", "lower", "less"
    value: Callable[[LoadedResult], float | None]
    samples: Callable[[LoadedResult], list[float] | None] | None = None  # raw samples for the significance test
    samples_stage: str | None = None  # the latency stage whose samples are tested
    detail: Callable[[LoadedResult], str | None] | None = None  # e.g. the tier a cost was computed for
    si_prefix: bool = False  # display with k/M/G/T prefixes (FLOPs span ten orders of magnitude)

    @property
    def direction(self) -> str:
        return "higher is worse" if self.higher_is_worse else "lower is worse"

    @property
    def sampled(self) -> bool:
        return self.samples is not None

    def format(self, raw: float | None) -> str:
        if raw is None:
            return "-"
        value, prefix = raw * self.scale, ""
        if self.si_prefix:
            for candidate, factor in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
                if abs(value) >= factor:
                    value, prefix = value / factor, candidate
                    break
        return f"{format_number(value)} {prefix}{self.unit}"


def format_number(x: float) -> str:
    magnitude = abs(x)
    if magnitude >= 100 or x == 0:
        return f"{x:.1f}"
    if magnitude >= 1:
        return f"{x:.2f}"
    if magnitude >= 0.01:
        return f"{x:.3f}"
    return f"{x:.3g}"


# ------------------------------------------------------------------------------------------------ extractors


def stage_samples(result: LoadedResult, stage: str) -> list[float] | None:
    samples = _get(result, "latency", "samples")
    values = samples.get(stage) if isinstance(samples, dict) else None
    return [float(v) for v in values] if values else None


def _latency(stage: str, percentile: str) -> MetricSpec:
    def value(result: LoadedResult) -> float | None:
        samples = stage_samples(result, stage)
        return getattr(summarize(samples), percentile) if samples else None

    return MetricSpec(
        name=f"latency.{stage}.{percentile}",
        unit="ms",
        scale=1e3,
        higher_is_worse=True,
        up="slower",
        down="faster",
        value=value,
        samples=lambda r: stage_samples(r, stage),
        samples_stage=stage,
    )


def _throughput(result: LoadedResult) -> float | None:
    return float(_get(result, "summary", "throughput", "requests_per_s", "value"))


def _rss_peak(result: LoadedResult) -> float | None:
    return float(_get(result, "memory", "measured", "rss_peak"))


def _cuda_peak(result: LoadedResult) -> float | None:
    value = _get(result, "memory", "measured").get("cuda_peak_allocated")
    return float(value) if value is not None else None


def _flop_stages(result: LoadedResult) -> dict[str, float]:
    stages = _get(result, "summary", "flops", "stages")
    try:
        return {name: float(figures["counted_flops"]) for name, figures in stages.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{result.path}: incomplete recbench result (summary.flops.stages: {exc})") from None


def _flops(stage: str | None) -> MetricSpec:
    def value(result: LoadedResult) -> float | None:
        stages = _flop_stages(result)
        return sum(stages.values()) if stage is None else stages.get(stage)

    return MetricSpec(
        name="flops" if stage is None else f"flops.{stage}",
        unit="FLOP",
        scale=1.0,
        si_prefix=True,
        higher_is_worse=True,
        up="more",
        down="less",
        value=value,
    )


def _energy(result: LoadedResult) -> float | None:
    energy = result.data.get("energy") or {}
    value = energy.get("joules_per_request")
    return float(value) if value is not None else None


def _energy_detail(result: LoadedResult) -> str | None:
    energy = result.data.get("energy") or {}
    return f"{energy.get('method')}{' estimate' if energy.get('estimated') else ''}" if energy else None


_COST_CACHE: dict[tuple[str, int, int], tuple[float, str] | None] = {}


def measured_cost(result: LoadedResult) -> tuple[float, str] | None:
    """(USD per 1M recommendations, tier name) on the tier the result was measured on, or None when the
    result has no measured tier in the catalogue (or its cost is unknown there)."""
    from bench.cost.api import costs_for
    from bench.hardware.tiers import load_tiers

    stat = result.path.stat()
    key = (str(result.path), stat.st_mtime_ns, stat.st_size)
    if key not in _COST_CACHE:
        try:
            rows = costs_for([result.path], tiers=load_tiers())
        except InputError:
            rows = []
        measured = [r for r in rows if r.basis == "measured" and r.cost_per_1m_recommendations_usd is not None]
        _COST_CACHE[key] = (measured[0].cost_per_1m_recommendations_usd, measured[0].timing.tier) if measured else None
    return _COST_CACHE[key]


def _cost(result: LoadedResult) -> float | None:
    found = measured_cost(result)
    return found[0] if found else None


def _cost_detail(result: LoadedResult) -> str | None:
    found = measured_cost(result)
    return f"tier {found[1]}" if found else None


def _get(result: LoadedResult, *keys: str) -> Any:
    node: Any = result.data
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"{result.path}: incomplete recbench result (missing {'.'.join(keys[: depth + 1])})")
        node = node[key]
    return node


# -------------------------------------------------------------------------------------------------- registry

THROUGHPUT = MetricSpec(
    name="throughput",
    unit="req/s",
    scale=1.0,
    higher_is_worse=False,
    up="higher",
    down="lower",
    value=_throughput,
    samples=lambda r: stage_samples(r, END_TO_END),
    samples_stage=END_TO_END,
)
SCALARS = (
    MetricSpec(
        name="memory.peak_rss",
        unit="MiB",
        scale=1 / 2**20,
        higher_is_worse=True,
        up="more",
        down="less",
        value=_rss_peak,
    ),
    MetricSpec(
        name="memory.cuda_peak",
        unit="MiB",
        scale=1 / 2**20,
        higher_is_worse=True,
        up="more",
        down="less",
        value=_cuda_peak,
    ),
    _flops(None),
    MetricSpec(
        name="energy.per_request",
        unit="J/request",
        scale=1.0,
        higher_is_worse=True,
        up="more",
        down="less",
        value=_energy,
        detail=_energy_detail,
    ),
    MetricSpec(
        name="cost.per_1m",
        unit="USD/1M rec.",
        scale=1.0,
        higher_is_worse=True,
        up="higher",
        down="lower",
        value=_cost,
        detail=_cost_detail,
    ),
)
FIXED = {spec.name: spec for spec in (THROUGHPUT, *SCALARS)}
METRIC_HELP = (
    "latency.p50, latency.p99 (end_to_end), latency.<stage>.p50|p99 (stage: "
    + ", ".join(STAGES[:-1])
    + ", end_to_end, llm_*), throughput, memory.peak_rss, memory.cuda_peak, flops, flops.<stage>, "
    "energy.per_request, cost.per_1m"
)


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def resolve_metric(name: str) -> MetricSpec | None:
    """The metric a name (or alias) stands for; None when the name is unknown."""
    name = canonical_name(name.strip())
    if name in FIXED:
        return FIXED[name]
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "latency" and _STAGE_NAME.match(parts[1]) and parts[2] in PERCENTILES:
        return _latency(parts[1], parts[2])
    if len(parts) == 2 and parts[0] == "flops" and _STAGE_NAME.match(parts[1]) and parts[1] != END_TO_END:
        return _flops(parts[1])
    return None


def metrics_for(baseline: LoadedResult, current: LoadedResult) -> tuple[list[MetricSpec], list[str]]:
    """The metrics both results have, in report order (end-to-end latency first), and one note per metric
    that only one of them has."""
    notes: list[str] = []
    base_stages = list(_get(baseline, "latency", "samples"))
    cur_stages = list(_get(current, "latency", "samples"))
    ordered = sorted(base_stages, key=lambda s: s != END_TO_END)  # end_to_end first, then pipeline order
    specs = [_latency(stage, p) for stage in ordered if stage in cur_stages for p in PERCENTILES]
    for stage in ordered:
        if stage not in cur_stages:
            notes.append(f"latency stage {stage} only in the baseline")
    for stage in cur_stages:
        if stage not in base_stages:
            notes.append(f"latency stage {stage} only in the current result")
    specs.append(THROUGHPUT)
    flop_stages = {**_flop_stages(baseline), **_flop_stages(current)}
    for spec in SCALARS:
        specs.append(spec)
        if spec.name == "flops":
            specs += [_flops(stage) for stage, total in flop_stages.items() if total]
    kept = []
    for spec in specs:
        present = (spec.value(baseline) is not None, spec.value(current) is not None)
        if all(present):
            kept.append(spec)
        elif any(present):
            notes.append(f"{spec.name}: only in the {'baseline' if present[0] else 'current result'}")
    return kept, notes
