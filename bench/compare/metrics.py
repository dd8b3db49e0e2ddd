"""The metrics `recbench compare` reports and `recbench check` gates on: names, extractors, units and direction.

| name | from the result | worse when |
|---|---|---|
| `latency.<stage>.p50`, `latency.<stage>.p99` | percentile of `latency.samples[<stage>]` (seconds) | higher |
| `latency.p50`, `latency.p99` | the same for `end_to_end` | higher |
| `throughput` | `summary.throughput.requests_per_s` | lower |
| `memory.peak_rss` | `memory.measured.rss_peak` (bytes) | higher |
| `memory.peak_anon` | `memory.measured.anon_peak` (bytes: RSS less file-backed and shared pages, Linux) | higher |
| `memory.cuda_peak` | `memory.measured.cuda_peak_allocated` (bytes, GPU runs) | higher |
| `flops`, `flops.<stage>` | `summary.flops.stages.*.counted_flops` (sum, or one stage) | higher |
| `energy.per_request` | `energy.joules_per_request` | higher |
| `cost.per_1m` | USD per 1M recommendations on the measured tier (bench.cost.api.costs_for) | higher |

Latency and throughput have raw samples (throughput is batch size / median end-to-end latency, so it is
tested on the end-to-end samples); the others are one value per result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.core.formatting import format_number, format_si
from bench.core.stages import LOOP_STAGES, Stage, display_order
from bench.core.stats import summarize
from bench.results.reader import StoredResult

PERCENTILES = ("p50", "p99")
ALIASES = {f"latency.{p}": f"latency.{Stage.END_TO_END}.{p}" for p in PERCENTILES}
_STAGE_NAMES = {stage.value for stage in Stage}


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    name: str  # canonical, e.g. latency.end_to_end.p99
    unit: str  # display unit
    scale: float  # display value = raw value x scale
    higher_is_worse: bool
    up: str  # the word for an increase: "slower", "higher", "more"
    down: str  # the word for a decrease: "faster", "lower", "less"
    value: Callable[[StoredResult], float | None]
    samples: Callable[[StoredResult], list[float] | None] | None = None  # raw samples for the significance test
    samples_stage: Stage | None = None  # the latency stage whose samples are tested
    quantile: float | None = None  # the quantile of those samples the metric is (or is derived from)
    inverse: bool = False  # the metric is proportional to 1 / that quantile (throughput = batch / p50)
    detail: Callable[[StoredResult], str | None] | None = None  # e.g. the tier a cost was computed for
    si_prefix: bool = False  # display with k/M/G/T prefixes (FLOPs span ten orders of magnitude)

    @property
    def direction(self) -> str:
        return "higher is worse" if self.higher_is_worse else "lower is worse"

    @property
    def sampled(self) -> bool:
        return self.samples is not None

    def format(self, raw: float | None) -> str:
        """Four significant figures: a gate's verdict may turn on the third."""
        if raw is None:
            return format_number(None)
        if self.si_prefix:
            return format_si(raw * self.scale, self.unit, significant=4)
        return f"{format_number(raw * self.scale, significant=4)} {self.unit}"


# ------------------------------------------------------------------------------------------------ extractors


def stage_samples(stored: StoredResult, stage: Stage) -> list[float] | None:
    values = stored.result.latency.samples.get(stage)
    return [float(v) for v in values] if values else None


def _latency(stage: Stage, percentile: str) -> MetricSpec:
    def value(stored: StoredResult) -> float | None:
        samples = stage_samples(stored, stage)
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
        quantile=int(percentile.removeprefix("p")) / 100,
    )


def _throughput(stored: StoredResult) -> float | None:
    return stored.result.summary.throughput.requests_per_s


def _rss_peak(stored: StoredResult) -> float | None:
    return float(stored.result.memory.measured.rss_peak)


def _anon_peak(stored: StoredResult) -> float | None:
    value = stored.result.memory.measured.anon_peak
    return None if value is None else float(value)


def _cuda_peak(stored: StoredResult) -> float | None:
    value = stored.result.memory.measured.cuda_peak_allocated
    return float(value) if value is not None else None


def _flop_stages(stored: StoredResult) -> dict[Stage, float]:
    return {stage: float(figures.counted_flops) for stage, figures in stored.result.summary.flops.stages.items()}


def _scalar(
    name: str,
    unit: str,
    value: Callable[[StoredResult], float | None],
    *,
    scale: float = 1.0,
    words: tuple[str, str] = ("more", "less"),
    detail: Callable[[StoredResult], str | None] | None = None,
    si_prefix: bool = False,
) -> MetricSpec:
    """A metric with one value per result (no samples to test) that is worse when it grows."""
    up, down = words
    return MetricSpec(
        name=name,
        unit=unit,
        scale=scale,
        higher_is_worse=True,
        up=up,
        down=down,
        value=value,
        detail=detail,
        si_prefix=si_prefix,
    )


def _flops(stage: Stage | None) -> MetricSpec:
    def value(stored: StoredResult) -> float | None:
        stages = _flop_stages(stored)
        return sum(stages.values()) if stage is None else stages.get(stage)

    return _scalar("flops" if stage is None else f"flops.{stage}", "FLOP", value, si_prefix=True)


def _energy(stored: StoredResult) -> float | None:
    return stored.result.energy.joules_per_request


def _energy_detail(stored: StoredResult) -> str | None:
    energy = stored.result.energy
    return f"{energy.method}{' estimate' if energy.estimated else ''}"


_COST_CACHE: dict[tuple[str, int, int], tuple[float, str] | None] = {}


def measured_cost(stored: StoredResult) -> tuple[float, str] | None:
    """(USD per 1M recommendations, tier name) on the tier the result was measured on, or None when the
    result has no measured tier in the catalogue (or its cost is unknown there)."""
    from bench.cost.api import operating_points
    from bench.cost.model import cost_table
    from bench.hardware.tiers import load_tiers

    stat = stored.path.stat()
    key = (str(stored.path), stat.st_mtime_ns, stat.st_size)
    if key not in _COST_CACHE:
        rows = cost_table(operating_points([stored]), load_tiers()).rows
        measured = [r for r in rows if r.basis == "measured" and r.rented_cost_per_1m_usd is not None]
        _COST_CACHE[key] = (measured[0].rented_cost_per_1m_usd, measured[0].timing.tier) if measured else None
    return _COST_CACHE[key]


def _cost(stored: StoredResult) -> float | None:
    found = measured_cost(stored)
    return found[0] if found else None


def _cost_detail(stored: StoredResult) -> str | None:
    found = measured_cost(stored)
    return f"tier {found[1]}" if found else None


# -------------------------------------------------------------------------------------------------- registry

THROUGHPUT = MetricSpec(
    name="throughput",
    unit="req/s",
    scale=1.0,
    higher_is_worse=False,
    up="higher",
    down="lower",
    value=_throughput,
    samples=lambda r: stage_samples(r, Stage.END_TO_END),
    samples_stage=Stage.END_TO_END,
    quantile=0.5,
    inverse=True,
)
SCALARS = (
    _scalar("memory.peak_rss", "MiB", _rss_peak, scale=1 / 2**20),
    _scalar("memory.peak_anon", "MiB", _anon_peak, scale=1 / 2**20),
    _scalar("memory.cuda_peak", "MiB", _cuda_peak, scale=1 / 2**20),
    _flops(None),
    _scalar("energy.per_request", "J/request", _energy, detail=_energy_detail),
    _scalar("cost.per_1m", "USD/1M rec.", _cost, words=("higher", "lower"), detail=_cost_detail),
)
FIXED = {spec.name: spec for spec in (THROUGHPUT, *SCALARS)}
METRIC_HELP = (
    "latency.p50, latency.p99 (end_to_end), latency.<stage>.p50|p99 (stage: "
    + ", ".join(str(s) for s in LOOP_STAGES)
    + ", end_to_end, llm_*), throughput, memory.peak_rss, memory.peak_anon, memory.cuda_peak, flops, "
    "flops.<stage>, "
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
    if len(parts) == 3 and parts[0] == "latency" and parts[1] in _STAGE_NAMES and parts[2] in PERCENTILES:
        return _latency(Stage(parts[1]), parts[2])
    if len(parts) == 2 and parts[0] == "flops" and parts[1] in _STAGE_NAMES and parts[1] != Stage.END_TO_END:
        return _flops(Stage(parts[1]))
    return None


def metrics_for(baseline: StoredResult, current: StoredResult) -> tuple[list[MetricSpec], list[str]]:
    """The metrics both results have, in report order (end-to-end latency first), and one note per metric
    that only one of them has."""
    notes: list[str] = []
    base_stages = list(baseline.result.latency.samples)
    cur_stages = list(current.result.latency.samples)
    ordered = display_order(base_stages)
    specs = [_latency(stage, p) for stage in ordered if stage in cur_stages for p in PERCENTILES]
    for stage in ordered:
        if stage not in cur_stages:
            notes.append(f"latency stage {stage} only in the baseline")
    for stage in display_order(cur_stages):
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
