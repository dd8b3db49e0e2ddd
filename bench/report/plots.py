"""Report figures (matplotlib, Agg). Each `plot_*` function returns a `matplotlib.figure.Figure` built without
pyplot, so no global figure state and no interactive backend are involved (nothing to close, and importing
this module does not change the backend of a caller's pyplot session): `Figure.savefig` renders PNG with
the Agg canvas.

Figures aggregate: one figure per question, however many results there are (a cost curve per tier, one
stacked bar per result), so a report over hundreds of results stays a handful of images.

Conventions shared by every figure: one colour per tier (the catalogue's order), filled markers / solid bars
for figures measured on the machine, hollow markers / dashed lines / hatched bars for projected or modelled
ones.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.models.analytic import DTYPE_BYTES

STAGES = ("preprocess", "interest", "candidates", "scoring", "rank_feedback")
MEMORY_PARTS = (("weights", "weights"), ("kv_cache", "KV cache"), ("activations", "activations (estimate)"))
MAX_PANELS = 3  # cost-vs-X panels (groups of points holding the other variables fixed)
MAX_LATENCY_BARS = 150  # beyond this the latency figure shows the slowest results (all are in latency.csv)
MAX_BAR_POINTS = 6  # points in the fallback bar chart
DPI = 100


# ------------------------------------------------------------------------------------------- colours


def tier_colors(tiers: Iterable[str]) -> dict[str, Any]:
    """One stable colour per tier, in catalogue order."""
    names = list(dict.fromkeys(tiers))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


# ------------------------------------------------------------------------------------- cost vs a variable


@dataclass(frozen=True)
class Axis:
    """A variable the cost can be plotted against; points are grouped by everything else that matters."""

    name: str  # "batch_size", "params", "prompt_tokens"
    label: str
    x: Callable[[OperatingPoint], float]  # plotted coordinate
    knob: Callable[[OperatingPoint], Any]  # the configured value (what "varies" means)
    others: Callable[[OperatingPoint], dict[str, Any]]  # held fixed within a curve
    log_base: float


def _common(p: OperatingPoint) -> dict[str, Any]:
    return {"dtype": p.dtype, "top_n": p.top_n, "machine": p.machine}


AXES: dict[str, Axis] = {
    "batch_size": Axis(
        "batch_size",
        "batch size (requests per batch)",
        lambda p: p.batch_size,
        lambda p: p.batch_size,
        lambda p: {"model": p.model, "max prompt": p.max_prompt_tokens, **_common(p)},
        2,
    ),
    "params": Axis(
        "params",
        "model size (parameters)",
        lambda p: p.params,
        lambda p: p.params,
        lambda p: {"batch": p.batch_size, "max prompt": p.max_prompt_tokens, **_common(p)},
        10,
    ),
    "prompt_tokens": Axis(
        "prompt_tokens",
        "sequence length (mean prompt tokens)",
        lambda p: p.prompt_tokens_mean,
        lambda p: p.max_prompt_tokens,
        lambda p: {"model": p.model, "batch": p.batch_size, **_common(p)},
        2,
    ),
}


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
    """What a cost-vs-X figure shows, computed before drawing (the caption is reported with the figure)."""

    axis: Axis
    panels: list[Panel]
    caption: str


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
    shown = ranked[:MAX_PANELS]
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
                if r.cost_per_1m_recommendations_usd is None:
                    left_out[r.timing.tier].add(_why_no_cost(r))
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
                costs.append(statistics.median(r.cost_per_1m_recommendations_usd or 0.0 for r in cell))
                measured.append(all(r.basis == "measured" for r in cell))
            curves.append(Curve(tier, xs, costs, measured))
        panels.append(Panel(label, curves))

    notes = []
    if left_out:
        parts = [f"{tier} ({'; '.join(sorted(reasons))})" for tier, reasons in left_out.items()]
        notes.append("Not drawn where there is no cost figure: " + ", ".join(parts) + ".")
    skipped = len(groups) - len(shown)
    if skipped:
        notes.append(
            f"{skipped} other group(s) of points (a single value of this variable, or beyond the first "
            f"{MAX_PANELS} panels) are not drawn; every point is in costs.csv."
        )
    return CostPanels(axis, panels, " ".join(notes))


def _sortable(key: tuple) -> tuple:
    """Group keys in natural order (numbers as numbers), whatever the mix of types."""
    return tuple((name, (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))) for name, v in key)


def _why_no_cost(row: TierCost) -> str:
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


def plot_cost_vs(spec: CostPanels, colors: dict[str, Any]) -> Figure:
    """Cost per 1M recommendations against one variable: a curve per tier, one panel per group of points."""
    n = len(spec.panels)
    fig = Figure(figsize=(4.6 * n + 2.6, 4.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, n, sharey=True, squeeze=False)[0]
    for ax, panel in zip(axes, spec.panels, strict=True):
        for curve in panel.curves:
            color = colors.get(curve.tier, "gray")
            dashed = not all(curve.measured)
            ax.plot(curve.xs, curve.costs, color=color, linestyle="--" if dashed else "-", linewidth=1.4, zorder=2)
            for x, y, m in zip(curve.xs, curve.costs, curve.measured, strict=True):
                ax.plot(
                    [x],
                    [y],
                    marker="o",
                    markersize=6,
                    color=color,
                    markeredgecolor=color,
                    markerfacecolor=color if m else "white",
                    markeredgewidth=1.5,
                    linestyle="none",
                    zorder=3,
                )
        ax.set_yscale("log")
        _log_x(ax, spec.axis, sorted({x for c in panel.curves for x in c.xs}))
        ax.set_xlabel(spec.axis.label)
        ax.grid(True, which="major", alpha=0.3)
        if panel.label:
            ax.set_title(panel.label, fontsize=9)
    axes[0].set_ylabel("USD per 1M recommendations (log)")
    fig.suptitle(f"Cost per 1M recommendations vs {spec.axis.label}", fontsize=11)
    tiers = list(dict.fromkeys(c.tier for panel in spec.panels for c in panel.curves))
    fig.legend(
        handles=_tier_handles(tiers, colors) + _basis_handles(),
        loc="outside right center",
        fontsize=8,
        frameon=False,
    )
    return fig


def plot_cost_bars(rows: Sequence[TierCost], colors: dict[str, Any], tier_order: Sequence[str]) -> Figure:
    """Cost per 1M recommendations per tier, for a result set where no variable is swept: grouped horizontal
    bars (one group per tier, one bar per point), solid where measured, hatched where projected."""
    points = list({id(r.point): r.point for r in rows}.values())[:MAX_BAR_POINTS]
    wanted = {id(p) for p in points}
    costs = {(r.timing.tier, id(r.point)): r for r in rows if id(r.point) in wanted}
    tiers = [t for t in tier_order if any((t, id(p)) in costs for p in points)]
    n = len(points)
    height = 0.8 / n
    fig = Figure(figsize=(9, 0.32 * len(tiers) * max(1, n * 0.7) + 1.8), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    shades = [1.0, 0.65, 0.45, 0.3, 0.2, 0.12]
    for j, p in enumerate(points):
        for i, tier in enumerate(tiers):
            r = costs.get((tier, id(p)))
            value = r.cost_per_1m_recommendations_usd if r else None
            y = i + (j - (n - 1) / 2) * height
            if value is None:
                ax.text(
                    0.01,
                    y,
                    f"  {_why_no_cost(r) if r else 'no row'}",
                    va="center",
                    fontsize=7,
                    color="gray",
                    transform=ax.get_yaxis_transform(),
                )
                continue
            measured = r is not None and r.basis == "measured"
            ax.barh(
                y,
                value,
                height=height * 0.9,
                color=colors.get(tier, "gray"),
                alpha=shades[j % len(shades)],
                hatch=None if measured else "///",
                edgecolor="black" if measured else "white",
                linewidth=0.5,
            )
            ax.text(value, y, f" {format_usd(value)}", va="center", fontsize=7)
    ax.set_yticks(range(len(tiers)), tiers, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ax.set_xlim(low, high * 3)  # room for the value labels
    ax.set_xlabel("USD per 1M recommendations (log)")
    ax.grid(True, axis="x", alpha=0.3)
    title = "Cost per 1M recommendations per tier"
    if n == 1:
        title += f" at {points[0].scenario} [{points[0].point}]"
    else:
        title += " (bars per point, darkest first: " + "; ".join(f"{p.scenario} [{p.point}]" for p in points) + ")"
    ax.set_title(title, fontsize=9, wrap=True)
    ax.legend(
        handles=[
            Patch(facecolor="lightgray", edgecolor="black", label="measured"),
            Patch(facecolor="lightgray", hatch="///", edgecolor="white", label="projected"),
        ],
        fontsize=8,
        loc="lower right",
    )
    return fig


def _log_x(ax: Any, axis: Axis, values: list[float]) -> None:
    ax.set_xscale("log", base=axis.log_base)
    ax.xaxis.set_minor_formatter(NullFormatter())
    if axis.name == "params":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}" if v >= 10 else f"{v:g}"))
    if values and len(values) <= 8 and _spread_out(values):
        ax.set_xticks(values)
        ax.xaxis.set_minor_formatter(NullFormatter())
    if values and min(values) == max(values):
        ax.set_xlim(values[0] / 1.5, values[0] * 1.5)


def _spread_out(values: list[float]) -> bool:
    """True when neighbouring values are at least 15% apart (their tick labels will not overlap)."""
    return all(b >= a * 1.15 for a, b in pairwise(values))


def _tier_handles(tiers: Sequence[str], colors: dict[str, Any]) -> list[Line2D]:
    return [Line2D([], [], color=colors.get(t, "gray"), marker="o", label=t) for t in tiers]


def _basis_handles() -> list[Line2D]:
    return [
        Line2D([], [], color="black", marker="o", linestyle="-", label="measured (filled, solid)"),
        Line2D(
            [],
            [],
            color="black",
            marker="o",
            markerfacecolor="white",
            linestyle="--",
            label="projected (hollow, dashed)",
        ),
    ]


# --------------------------------------------------------------------------------------------- latency


@dataclass
class LatencyBar:
    label: str
    stage_p50_ms: dict[str, float]
    end_to_end_p50_ms: float
    end_to_end_p99_ms: float


def latency_bars(bars: Sequence[LatencyBar]) -> tuple[list[LatencyBar], str]:
    """The bars the latency figure shows (all, or the slowest MAX_LATENCY_BARS) and its caption."""
    caption = (
        "Stage bars are each stage's median (p50) per batch; stage medians need not add up to the end-to-end "
        "median. Markers: end-to-end p50 and p99 per batch. Measured on the machine that ran the benchmark."
    )
    if len(bars) <= MAX_LATENCY_BARS:
        return list(bars), caption
    keep = set(sorted(range(len(bars)), key=lambda i: -bars[i].end_to_end_p50_ms)[:MAX_LATENCY_BARS])
    shown = [b for i, b in enumerate(bars) if i in keep]
    return shown, caption + (
        f" Showing the {MAX_LATENCY_BARS} slowest of {len(bars)} results; every result is in latency.csv."
    )


def plot_latency(bars: Sequence[LatencyBar]) -> Figure:
    """Latency breakdown: a horizontal stacked bar of stage p50s per result, with end-to-end p50 and p99."""
    n = len(bars)
    fig = Figure(figsize=(10, min(0.26 * n + 1.6, 600)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ys = list(range(n))
    left = [0.0] * n
    cmap = colormaps["Set2"]
    for k, stage in enumerate(STAGES):
        widths = [b.stage_p50_ms.get(stage, 0.0) for b in bars]
        ax.barh(ys, widths, left=left, height=0.7, color=cmap(k), label=f"{stage} (p50)")
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.plot([b.end_to_end_p50_ms for b in bars], ys, "D", color="black", markersize=4, label="end-to-end p50")
    ax.plot(
        [b.end_to_end_p99_ms for b in bars],
        ys,
        "|",
        color="crimson",
        markersize=10,
        markeredgewidth=2,
        label="end-to-end p99",
    )
    ax.set_yticks(ys, [b.label for b in bars], fontsize=7 if n > 20 else 8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("milliseconds per batch (measured)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Latency per batch by stage (measured)", fontsize=11)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside right upper", frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------- memory


def memory_reference(points: Sequence[OperatingPoint]) -> OperatingPoint:
    """The largest point: the highest analytic memory need."""
    return max(points, key=lambda p: (p.memory_need_bytes.get("total", 0), p.batch_size, p.max_prompt_tokens))


def plot_memory(
    point: OperatingPoint,
    rows: Sequence[TierCost],
    colors: dict[str, Any],
    *,
    measured_bytes: float | None = None,
    measured_label: str = "measured",
) -> Figure:
    """Left: the analytic memory need of `point` by part (per dtype the tiers would run in). Right: the need
    against each tier's capacity (log scale), red where it does not fit."""
    point_rows = [r for r in rows if r.point is point]
    fig = Figure(figsize=(12, max(3.6, 0.3 * len(point_rows) + 1.6)), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.5])
    dtypes = list(dict.fromkeys([point.dtype, *(r.timing.dtype for r in point_rows)]))
    cmap = colormaps["Pastel1"]
    for i, dtype in enumerate(dtypes):
        scale = DTYPE_BYTES.get(dtype, 4) / DTYPE_BYTES.get(point.dtype, 4)
        base = 0.0
        for k, (key, label) in enumerate(MEMORY_PARTS):
            value = point.memory_need_bytes.get(key, 0) * scale / 1e9
            left.barh(i, value, left=base, color=cmap(k), edgecolor="gray", label=label if i == 0 else None)
            base += value
        left.text(base, i, f" {format_bytes(base * 1e9)}", va="center", fontsize=8)
    if measured_bytes:
        left.axvline(measured_bytes / 1e9, color="black", linestyle=":", label=measured_label)
    names = [f"{d}{' (as measured)' if d == point.dtype else ''}" for d in dtypes]
    left.set_yticks(range(len(dtypes)), names, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("GB (analytic estimate)")
    left.set_title("Memory need by part", fontsize=10)
    left.legend(fontsize=7, loc="lower right")
    left.margins(x=0.25)

    tiers = [r.timing.tier for r in point_rows]
    ys = range(len(point_rows))
    capacity = [r.timing.memory_capacity_bytes / 1e9 for r in point_rows]
    need = [r.timing.memory_need_bytes / 1e9 for r in point_rows]
    right.barh(ys, capacity, color=[colors.get(t, "gray") for t in tiers], alpha=0.35, label="tier capacity")
    right.plot(need, ys, "|", color="black", markersize=14, markeredgewidth=2, label="need (estimate)")
    for y, r in zip(ys, point_rows, strict=True):
        fraction = r.timing.memory_need_bytes / r.timing.memory_capacity_bytes if r.timing.memory_capacity_bytes else 0
        text = f" {fraction:.1%} of {format_bytes(r.timing.memory_capacity_bytes)}"
        right.text(
            r.timing.memory_capacity_bytes / 1e9,
            y,
            text + ("" if r.timing.fits else "  DOES NOT FIT"),
            va="center",
            fontsize=7,
            color="black" if r.timing.fits else "crimson",
        )
    right.set_yticks(list(ys), tiers, fontsize=8)
    right.invert_yaxis()
    right.set_xscale("log")
    right.margins(x=0.6)
    right.set_xlabel("GB (log)")
    right.set_title("Need vs capacity per tier", fontsize=10)
    right.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Memory at the largest point: {point.scenario} [{point.point}], {point.model}", fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------- energy


def energy_kind(basis: str | None) -> str:
    """ "measured", "measured (estimate)" or "modelled" from a row's energy_basis."""
    if basis is None:
        return "none"
    if basis.startswith("modelled"):
        return "modelled"
    return "measured (estimate)" if "estimate" in basis else "measured"


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
        key=lambda p: (counts[id(p)], p.memory_need_bytes.get("total", 0), p.batch_size, p.max_prompt_tokens),
    )


def plot_energy(
    rows: Sequence[TierCost], point: OperatingPoint, colors: dict[str, Any], tier_order: Sequence[str]
) -> Figure:
    """Energy per recommendation per tier at `point` (bars: solid measured, hatched modelled), with the other
    points' values as grey dots (their spread)."""
    at_point = {r.timing.tier: r for r in rows if r.point is point and r.energy_j_per_recommendation is not None}
    others: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.point is not point and r.energy_j_per_recommendation is not None:
            others[r.timing.tier].append(r.energy_j_per_recommendation)
    tiers = [t for t in tier_order if t in at_point or t in others]
    kinds = {energy_kind(r.energy_basis) for r in at_point.values()}
    fig = Figure(figsize=(10, 0.32 * max(len(tiers), 1) + 2.1), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    if not tiers:
        ax.text(0.5, 0.5, "No energy figure: the model fits on none of these tiers", ha="center", va="center")
        ax.set_axis_off()
        return fig
    labels = []
    for i, tier in enumerate(tiers):
        r = at_point.get(tier)
        label = "–"
        if r is not None:
            value = r.energy_j_per_recommendation or 0.0
            kind = energy_kind(r.energy_basis)
            modelled = kind == "modelled"
            ax.barh(
                i,
                value,
                height=0.7,
                color=colors.get(tier, "gray"),
                alpha=0.55 if modelled else 1.0,
                hatch="///" if modelled else None,
                edgecolor="white" if modelled else "black",
                linewidth=0.5,
            )
            label = format_energy(value) + (f" ({kind})" if len(kinds) > 1 else "")
        labels.append(label)
        if others.get(tier):
            ax.plot(others[tier], [i] * len(others[tier]), "o", color="dimgray", markersize=3, alpha=0.6)
    ax.set_yticks(range(len(tiers)), tiers, fontsize=8)
    ax.set_ylim(len(tiers) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlabel("joules per recommendation (log)")
    ax.grid(True, axis="x", alpha=0.3)
    values = ax.twinx()  # the figures at `point`, as right-hand tick labels (never overlapping the dots)
    values.set_ylim(ax.get_ylim())
    values.set_yticks(range(len(tiers)), labels, fontsize=8)
    values.tick_params(length=0)
    suffix = " (all modelled: estimates)" if kinds <= {"modelled"} else ""
    ax.set_title(f"Energy per recommendation at {point.scenario} [{point.point}]{suffix}", fontsize=11)
    handles = [
        Patch(facecolor="lightgray", edgecolor="black", label="measured (energy counter)"),
        Patch(facecolor="lightgray", hatch="///", edgecolor="white", label="modelled from TDP (estimate)"),
    ]
    if others:
        handles.append(
            Line2D([], [], marker="o", color="dimgray", linestyle="none", markersize=3, label="other points")
        )
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------- format


def format_count(value: float) -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def format_bytes(value: float) -> str:
    for factor, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {suffix}"
    return f"{value:.0f} B"


def format_usd(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    if abs(value) >= 1000:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:.{digits}f}"


def format_energy(joules: float | None) -> str:
    if joules is None:
        return "–"
    for factor, suffix in ((1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")):
        if abs(joules) >= factor:
            return f"{joules / factor:.3g} {suffix}"
    return f"{joules:.3g} J"


@dataclass
class Plot:
    name: str  # file stem of the PNG
    title: str
    figure: Figure
    caption: str


def make_plots(
    rows: Sequence[TierCost],
    tier_order: Sequence[str],
    latency: Sequence[LatencyBar],
    *,
    measured_memory: dict[str, tuple[float, str]] | None = None,
) -> list[Plot]:
    """Every report figure, in report order: cost vs each swept variable (or cost per tier when nothing is
    swept), latency by stage, memory at the largest point, energy per recommendation. `measured_memory`
    maps a result path to (bytes, label) of its measured memory use, drawn for comparison."""
    colors = tier_colors(tier_order)
    plots: list[Plot] = []
    for axis in AXES.values():
        spec = cost_panels(rows, axis, tier_order)
        if spec is not None:
            plots.append(
                Plot(
                    f"cost_vs_{axis.name}",
                    f"Cost per 1M recommendations vs {axis.label}",
                    plot_cost_vs(spec, colors),
                    _cost_caption(spec.caption),
                )
            )
    if not plots and rows:
        plots.append(
            Plot(
                "cost_per_tier",
                "Cost per 1M recommendations per tier",
                plot_cost_bars(rows, colors, tier_order),
                _cost_caption(_bar_caption(rows)),
            )
        )
    if latency:
        bars, caption = latency_bars(latency)
        plots.append(Plot("latency_breakdown", "Latency per batch by stage", plot_latency(bars), caption))
    points = list({id(r.point): r.point for r in rows}.values())
    if points:
        largest = memory_reference(points)
        increase, increase_label = (measured_memory or {}).get(largest.path, (None, ""))
        fits = [r.timing.tier for r in rows if r.point is largest and not r.timing.fits]
        caption = (
            f"Analytic estimate (weights + KV cache + activations) for {largest.scenario} [{largest.point}], "
            "rescaled to the dtype each tier would run in; capacity is the catalogue's memory per device."
            + (f" Dotted line: {increase_label} on the benchmark machine." if increase else "")
            + (f" Does not fit: {', '.join(fits)}." if fits else "")
        )
        plots.append(
            Plot(
                "memory",
                "Memory need vs tier capacity (largest point)",
                plot_memory(largest, rows, colors, measured_bytes=increase, measured_label=increase_label),
                caption,
            )
        )
        reference = energy_reference(rows)
        kinds = {energy_kind(r.energy_basis) for r in rows if r.energy_j_per_recommendation is not None}
        missing = sorted(
            {r.timing.tier for r in rows if r.point is reference and r.energy_j_per_recommendation is None}
        )
        caption = (
            f"Bars at {reference.scenario} [{reference.point}]; grey dots: the other points. "
            + (
                "Every figure here is modelled from TDP, an estimate, not a measurement. "
                if kinds <= {"modelled"}
                else "Solid bars come from an energy counter on the benchmark machine; hatched bars are modelled "
                "from TDP, estimates. "
            )
            + "Bases: "
            + "; ".join(f"{basis} on {', '.join(t)}" for basis, t in energy_bases(rows).items())
            + ". "
            + (f"No figure (does not fit or no latency): {', '.join(missing)}." if missing else "")
        )
        plots.append(
            Plot(
                "energy",
                "Energy per recommendation per tier",
                plot_energy(rows, reference, colors, tier_order),
                caption.strip(),
            )
        )
    return plots


def _cost_caption(extra: str) -> str:
    text = (
        "Filled markers / solid bars: latency measured on that tier. Hollow markers, dashed lines, hatched bars: "
        "roofline projection from the measured work (an estimate)."
    )
    return f"{text} {extra}".strip()


def _bar_caption(rows: Sequence[TierCost]) -> str:
    missing = sorted(
        {f"{r.timing.tier} ({_why_no_cost(r)})" for r in rows if r.cost_per_1m_recommendations_usd is None}
    )
    points = {id(r.point) for r in rows}
    text = "No variable (batch size, model size, sequence length) varies across these results."
    if len(points) > MAX_BAR_POINTS:
        text += f" The first {MAX_BAR_POINTS} of {len(points)} points are drawn; all are in costs.csv."
    if missing:
        text += " No cost figure: " + ", ".join(missing) + "."
    return text
