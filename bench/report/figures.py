"""What the report's figures show, decided before anything is drawn: which variables are plotted against which,
which points and tiers appear, which results a figure leaves out and why. No matplotlib here: the drawing is
bench.report.plots, the prose under each figure bench.report.captions.

Conventions shared by every figure: one colour per tier (the catalogue's order), filled markers / solid bars
for figures measured on the machine, hollow markers / dashed lines / hatched bars for projected or modelled
ones.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core.formatting import format_count
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.cost.quality import QualityCosts, quality_costs
from bench.report import captions

MEMORY_PARTS = (
    ("weights_bytes", "weights"),
    ("kv_cache_bytes", "KV cache"),
    ("activations_bytes", "activations (estimate)"),
)
MAX_PANELS = 3  # cost-vs-X panels (groups of points holding the other variables fixed)
MAX_LATENCY_BARS = 150  # beyond this the latency figure shows the slowest results (all are in latency.csv)
MAX_BAR_POINTS = 6  # points in the fallback bar chart


# ------------------------------------------------------------------------------------- cost vs a variable


# Fields held fixed within a curve, as panel labels name them; dtype, top_n and machine always are.
_FIXED_LABELS = {"model": "model", "max_prompt_tokens": "max prompt", "batch_size": "batch"}
_ALWAYS_FIXED = ("dtype", "top_n", "machine")


@dataclass(frozen=True)
class Axis:
    """A variable the cost can be plotted against (fields of OperatingPoint); points are grouped by everything
    else that matters."""

    name: str  # "batch_size", "params", "prompt_tokens"
    label: str
    x_field: str  # the plotted coordinate
    knob_field: str  # the configured value (what "varies" means)
    fixed: tuple[str, ...]  # held fixed within a curve, besides _ALWAYS_FIXED

    @property
    def log_base(self) -> float:
        return 10 if self.name == "params" else 2

    def x(self, point: OperatingPoint) -> float:
        return float(getattr(point, self.x_field))

    def knob(self, point: OperatingPoint) -> Any:
        return getattr(point, self.knob_field)

    def others(self, point: OperatingPoint) -> dict[str, Any]:
        fixed = {_FIXED_LABELS[name]: getattr(point, name) for name in self.fixed}
        return {**fixed, **{name: getattr(point, name) for name in _ALWAYS_FIXED}}


AXES: dict[str, Axis] = {
    axis.name: axis
    for axis in (
        Axis("batch_size", "batch size (requests per batch)", "batch_size", "batch_size",
             ("model", "max_prompt_tokens")),
        Axis("params", "model size (parameters)", "params", "params", ("batch_size", "max_prompt_tokens")),
        Axis("prompt_tokens", "sequence length (mean prompt tokens)", "prompt_tokens_mean", "max_prompt_tokens",
             ("model", "batch_size")),
    )
}  # fmt: skip


@dataclass
class Curve:
    tier: str
    xs: list[float]
    costs: list[float]
    measured: list[bool]


@dataclass
class Panel:
    label: str  # the values held fixed ("" when only one group exists)
    curves: list[Curve]


@dataclass
class CostPanels:
    """What a cost-vs-X figure shows, computed before drawing, and what it leaves out."""

    axis: Axis
    panels: list[Panel]
    left_out: dict[str, set[str]] = field(default_factory=dict)  # tier -> why it has no cost figure
    skipped_groups: int = 0  # groups of points not drawn (a single value of the variable, or beyond MAX_PANELS)


def axis_varies(points: Sequence[OperatingPoint], axis: Axis) -> bool:
    return len({axis.knob(p) for p in points}) > 1


def cost_panels(rows: Sequence[TierCost], axis: Axis, tier_order: Sequence[str]) -> CostPanels | None:
    """Group the rows into panels (the other variables held fixed) and curves (one per tier), or None when
    no group of points has two values of the variable."""
    points = list({id(r.point): r.point for r in rows}.values())
    if not axis_varies(points, axis):
        return None
    groups: dict[tuple, list[OperatingPoint]] = defaultdict(list)
    for p in points:
        groups[tuple(sorted(axis.others(p).items(), key=lambda kv: kv[0]))].append(p)
    usable = {key: ps for key, ps in groups.items() if len({axis.knob(p) for p in ps}) > 1}
    if not usable:
        return None
    ranked = sorted(usable, key=lambda key: (-len({axis.knob(p) for p in usable[key]}), _sortable(key)))
    shown = sorted(ranked[:MAX_PANELS], key=_sortable)  # the fullest groups, drawn in order of their values
    varying = _varying_fields([dict(key) for key in groups])
    by_point: dict[int, list[TierCost]] = defaultdict(list)
    for r in rows:
        by_point[id(r.point)].append(r)

    panels = []
    left_out: dict[str, set[str]] = defaultdict(set)  # tier -> reasons
    for key in shown:
        fields = dict(key)
        label = ", ".join(f"{name} {_fmt_field(name, fields[name])}" for name in varying)
        cells: dict[tuple[str, Any], list[TierCost]] = defaultdict(list)
        for p in usable[key]:
            for r in by_point[id(p)]:
                if r.rented_cost_per_1m_usd is None:
                    left_out[r.timing.tier].add(why_no_cost(r))
                    continue
                cells[(r.timing.tier, axis.knob(p))].append(r)
        curves = []
        for tier in tier_order:
            knobs = sorted(k for t, k in cells if t == tier)
            if not knobs:
                continue
            xs, costs, measured = [], [], []
            for k in knobs:
                cell = cells[(tier, k)]  # repeated runs of one configuration: the median
                xs.append(statistics.median(axis.x(r.point) for r in cell))
                costs.append(statistics.median(r.rented_cost_per_1m_usd or 0.0 for r in cell))
                measured.append(all(r.basis == "measured" for r in cell))
            curves.append(Curve(tier, xs, costs, measured))
        panels.append(Panel(label, curves))

    return CostPanels(axis, panels, dict(left_out), len(groups) - len(shown))


def _sortable(key: tuple) -> tuple:
    """Group keys in natural order (numbers as numbers), whatever the mix of types."""
    return tuple((name, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))) for name, v in key)


def why_no_cost(row: TierCost) -> str:
    if not row.timing.fits:
        return "does not fit in memory"
    if row.timing.batch_p50_s is None:
        return row.timing.notes[0] if row.timing.notes else "no latency figure"
    return "no price"


def _varying_fields(groups: list[dict[str, Any]]) -> list[str]:
    if len(groups) < 2:
        return []
    return [name for name in groups[0] if len({str(g.get(name)) for g in groups}) > 1]


def _fmt_field(name: str, value: Any) -> str:
    if name == "params":
        return format_count(value)
    return str(value)


# --------------------------------------------------------------------------------------------- latency


@dataclass
class LatencyBar:
    label: str
    stage_p50_ms: dict[str, float]
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float


def latency_bars(bars: Sequence[LatencyBar]) -> list[LatencyBar]:
    """The bars the latency figure shows: all, or the slowest MAX_LATENCY_BARS."""
    if len(bars) <= MAX_LATENCY_BARS:
        return list(bars)
    keep = set(sorted(range(len(bars)), key=lambda i: -bars[i].end_to_end_p50_ms)[:MAX_LATENCY_BARS])
    return [b for i, b in enumerate(bars) if i in keep]


# ------------------------------------------------------------------------------------------ memory, energy


def memory_reference(points: Sequence[OperatingPoint]) -> OperatingPoint:
    """The largest point: the highest analytic memory need."""
    return max(points, key=lambda p: (p.memory_need.total_bytes, p.batch_size, p.max_prompt_tokens))


def energy_bases(rows: Sequence[TierCost]) -> dict[str, list[str]]:
    """Each distinct energy basis (as the cost layer words it) and the tiers it applies to."""
    bases: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if r.energy_basis and r.timing.tier not in bases[r.energy_basis]:
            bases[r.energy_basis].append(r.timing.tier)
    return dict(bases)


def energy_reference(rows: Sequence[TierCost]) -> OperatingPoint:
    """The point with energy figures on the most tiers; ties go to the largest."""
    counts: dict[int, int] = defaultdict(int)
    points: dict[int, OperatingPoint] = {}
    for r in rows:
        points[id(r.point)] = r.point
        counts[id(r.point)] += r.energy_j_per_recommendation is not None
    return max(
        points.values(),
        key=lambda p: (counts[id(p)], p.memory_need.total_bytes, p.batch_size, p.max_prompt_tokens),
    )


# ------------------------------------------------------------------------------------------- the figures


@dataclass(kw_only=True)
class FigurePlan:
    name: str  # file stem of the PNG
    title: str
    caption: str


@dataclass(kw_only=True)
class CostVsFigure(FigurePlan):
    panels: CostPanels


@dataclass(kw_only=True)
class CostBarsFigure(FigurePlan):
    rows: Sequence[TierCost]
    tier_order: Sequence[str]


@dataclass(kw_only=True)
class QualityCostFigure(FigurePlan):
    costs: QualityCosts
    tier_order: Sequence[str]
    min_ndcg: float | None = None  # a plan's quality bar, drawn as a line


@dataclass(kw_only=True)
class LatencyFigure(FigurePlan):
    bars: list[LatencyBar]


@dataclass(kw_only=True)
class MemoryFigure(FigurePlan):
    point: OperatingPoint
    rows: Sequence[TierCost]
    measured_bytes: float | None = None
    measured_label: str = ""


@dataclass(kw_only=True)
class EnergyFigure(FigurePlan):
    point: OperatingPoint
    rows: Sequence[TierCost]
    tier_order: Sequence[str]


def plan_figures(
    rows: Sequence[TierCost],
    tier_order: Sequence[str],
    latency: Sequence[LatencyBar],
    *,
    measured_memory: dict[str, tuple[float, str]] | None = None,
    min_ndcg: float | None = None,
) -> list[FigurePlan]:
    """Every report figure, in report order: cost vs each swept variable (or cost per tier when nothing is
    swept), ranking quality against cost (results with an evaluation), latency by stage, memory at the largest
    point, energy per recommendation. `measured_memory` maps a result path to (bytes, label) of its measured
    memory use, drawn for comparison; `min_ndcg` is a capacity plan's quality bar, drawn on the quality figure."""
    figures: list[FigurePlan] = []
    for axis in AXES.values():
        panels = cost_panels(rows, axis, tier_order)
        if panels is not None:
            figures.append(
                CostVsFigure(
                    name=f"cost_vs_{axis.name}",
                    title=f"Cost per 1M recommendations vs {axis.label}",
                    caption=captions.cost(captions.cost_panels(panels.left_out, panels.skipped_groups, MAX_PANELS)),
                    panels=panels,
                )
            )
    if not figures and rows:
        figures.append(
            CostBarsFigure(
                name="cost_per_tier",
                title="Cost per 1M recommendations per tier",
                caption=captions.cost(captions.cost_bars(rows, MAX_BAR_POINTS, why_no_cost)),
                rows=rows,
                tier_order=tier_order,
            )
        )
    quality = quality_costs(rows)
    if quality.drawn:
        figures.append(
            QualityCostFigure(
                name="quality_vs_cost",
                title="Ranking quality (NDCG) against cost per 1M recommendations",
                caption=captions.quality(quality, min_ndcg, why_no_cost),
                costs=quality,
                tier_order=tier_order,
                min_ndcg=min_ndcg,
            )
        )
    if latency:
        shown = latency_bars(latency)
        figures.append(
            LatencyFigure(
                name="latency_breakdown",
                title="Latency per batch by stage",
                caption=captions.latency(shown=len(shown), total=len(latency)),
                bars=shown,
            )
        )
    points = list({id(r.point): r.point for r in rows}.values())
    if points:
        largest = memory_reference(points)
        measured_bytes, measured_label = (measured_memory or {}).get(largest.path, (None, ""))
        figures.append(
            MemoryFigure(
                name="memory",
                title="Memory need vs tier capacity (largest point)",
                caption=captions.memory(
                    largest,
                    measured_label if measured_bytes else None,
                    [r.timing.tier for r in rows if r.point is largest and not r.timing.fits],
                ),
                point=largest,
                rows=rows,
                measured_bytes=measured_bytes,
                measured_label=measured_label,
            )
        )
        reference = energy_reference(rows)
        figures.append(
            EnergyFigure(
                name="energy",
                title="Energy per recommendation per tier",
                caption=captions.energy(reference, rows, energy_bases(rows)),
                point=reference,
                rows=rows,
                tier_order=tier_order,
            )
        )
    return figures
