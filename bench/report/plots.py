"""Report figures (matplotlib, Agg), drawn from the figure plans of bench.report.figures. Each `plot_*`
function returns a `matplotlib.figure.Figure` built without pyplot, so no global figure state and no interactive
backend are involved (nothing to close, and importing this module does not change the backend of a caller's
pyplot session): `Figure.savefig` renders PNG with the Agg canvas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from bench.core.dtypes import dtype_bytes
from bench.core.formatting import format_bytes, format_count, format_energy, format_percent, format_usd
from bench.core.kinds import EnergyKind
from bench.core.stages import LOOP_STAGES
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.report.figures import (
    MAX_BAR_POINTS,
    MEMORY_PARTS,
    Axis,
    CostBarsFigure,
    CostPanels,
    CostVsFigure,
    EnergyFigure,
    FigurePlan,
    LatencyBar,
    LatencyFigure,
    MemoryFigure,
    QualityCostFigure,
    why_no_cost,
)

DPI = 100


# ------------------------------------------------------------------------------------------- colours


# Cool hues for CPU tiers, warm hues for GPU tiers, so the two families read apart at a glance (tab20's colours,
# split by hue).
CPU_COLOURS = ("#1f77b4", "#17becf", "#2ca02c", "#aec7e8", "#9edae5", "#98df8a", "#393b79", "#637939")
GPU_COLOURS = ("#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#9467bd", "#ff9896", "#ffbb78",
               "#c49c94", "#f7b6d2", "#dbdb8d", "#c5b0d5")  # fmt: skip


def tier_colors(kinds: Mapping[str, str]) -> dict[str, Any]:
    """One stable colour per tier (name -> kind, "cpu" or "gpu", in catalogue order): CPU tiers in cool hues,
    GPU tiers in warm ones; a family with more tiers than hues repeats them."""
    colours: dict[str, Any] = {}
    for kind, palette in (("cpu", CPU_COLOURS), ("gpu", GPU_COLOURS)):
        names = [name for name, k in kinds.items() if k == kind]
        colours.update({name: palette[i % len(palette)] for i, name in enumerate(names)})
    return colours


# ------------------------------------------------------------------------------------------ cost figures


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
            value = r.rented_cost_per_1m_usd if r else None
            y = i + (j - (n - 1) / 2) * height
            if value is None:
                ax.text(
                    0.01,
                    y,
                    f"  {why_no_cost(r) if r else 'no row'}",
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


# ---------------------------------------------------------------------------------------- quality vs cost

LEVER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


def plot_quality_vs_cost(plan: QualityCostFigure, colors: dict[str, Any]) -> Figure:
    """NDCG (mean, 95% interval as error bars) against rented cost per 1M recommendations (log), one marker per
    (tier, lever): colour per tier, shape per lever, filled where measured and hollow where projected; the Pareto
    front joined by a grey line; chance (and a plan's quality bar) as horizontal lines."""
    drawn = plan.costs.drawn
    fig = Figure(figsize=(10, 5.6), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    labels = list(dict.fromkeys(q.label for q in drawn))
    shapes = {label: LEVER_MARKERS[i % len(LEVER_MARKERS)] for i, label in enumerate(labels)}
    for q in drawn:
        evaluation = q.point.evaluation
        assert evaluation is not None and q.cost is not None
        color = colors.get(q.row.timing.tier, "gray")
        mean, ci = evaluation.ndcg_mean, evaluation.ndcg_ci
        ax.errorbar([q.cost], [mean], yerr=[[mean - ci.low], [ci.high - mean]], fmt="none", ecolor=color,
                    elinewidth=0.7, alpha=0.35, capsize=2, zorder=2)  # fmt: skip
        ax.plot([q.cost], [mean], marker=shapes[q.label], markersize=8 if q.pareto else 6, linestyle="none",
                markerfacecolor=color if q.measured else "white",
                markeredgecolor="black" if q.pareto else color,
                markeredgewidth=1.8 if q.pareto else 1.2, zorder=4 if q.pareto else 3)  # fmt: skip
    for group in plan.costs.groups:
        front = sorted(
            (q.cost or 0.0, q.point.evaluation.ndcg_mean)
            for q in drawn
            if q.pareto and q.point.evaluation and (q.point.evaluation.top_n, q.point.evaluation.candidates) == group
        )
        if len(front) > 1:
            ax.step([c for c, _ in front], [n for _, n in front], where="post", color="gray", linewidth=1, zorder=1)
    chances = sorted({(q.point.evaluation.chance_ndcg, q.point.evaluation.top_n, q.point.evaluation.candidates)
                      for q in drawn if q.point.evaluation})  # fmt: skip
    for chance, top_n, candidates in chances:
        ax.axhline(chance, color="black", linestyle=":", linewidth=1, zorder=0)
        ax.annotate(f"chance (top {top_n} of {candidates})", (0.005, chance), xycoords=("axes fraction", "data"),
                    fontsize=7, va="bottom")  # fmt: skip
    if plan.min_ndcg is not None:
        ax.axhline(plan.min_ndcg, color="crimson", linestyle="--", linewidth=1, zorder=0)
        ax.annotate(f"quality bar {plan.min_ndcg:g}", (0.995, plan.min_ndcg), xycoords=("axes fraction", "data"),
                    fontsize=7, va="bottom", ha="right", color="crimson")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("rented USD per 1M recommendations (log; hollow: projected, an estimate)")
    top_ns = sorted({q.point.evaluation.top_n for q in drawn if q.point.evaluation})
    ax.set_ylabel(f"NDCG@{'/'.join(map(str, top_ns))} (mean, 95% interval)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title("Ranking quality against cost per 1M recommendations", fontsize=11)
    tiers = [t for t in plan.tier_order if any(q.row.timing.tier == t for q in drawn)]
    handles: list[Any] = [Patch(facecolor=colors.get(t, "gray"), label=t) for t in tiers]
    handles += [Line2D([], [], color="black", marker=shapes[label], linestyle="none", markerfacecolor="lightgray",
                       label=label) for label in labels]  # fmt: skip
    handles += [
        Line2D([], [], color="black", marker="o", linestyle="none", label="measured (filled)"),
        Line2D([], [], color="black", marker="o", markerfacecolor="white", linestyle="none",
               label="projected (hollow, estimate)"),
        Line2D([], [], color="gray", marker="o", markeredgecolor="black", markeredgewidth=1.8, markerfacecolor="white",
               label="Pareto front"),
        Line2D([], [], color="black", linestyle=":", label="chance"),
    ]  # fmt: skip
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    return fig


# --------------------------------------------------------------------------------------------- latency


def plot_latency(bars: Sequence[LatencyBar]) -> Figure:
    """Latency breakdown: a horizontal stacked bar of stage p50s per result, with end-to-end p50 and p99."""
    n = len(bars)
    fig = Figure(figsize=(10, min(0.26 * n + 1.6, 600)), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ys = list(range(n))
    left = [0.0] * n
    cmap = colormaps["Set2"]
    for k, stage in enumerate(LOOP_STAGES):
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
        scale = dtype_bytes(dtype) / dtype_bytes(point.dtype)
        base = 0.0
        for k, (key, label) in enumerate(MEMORY_PARTS):
            value = getattr(point.memory_need, key) * scale / 1e9
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
    # Below the figure, where the layout makes room for it: inside the panel it covered the lowest bar.
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="outside lower left", ncols=2, frameon=False)
    left.margins(x=0.25)

    tiers = [r.timing.tier for r in point_rows]
    ys = range(len(point_rows))
    capacity = [r.timing.memory_capacity_bytes / 1e9 for r in point_rows]
    need = [r.timing.memory_need_bytes / 1e9 for r in point_rows]
    right.barh(ys, capacity, color=[colors.get(t, "gray") for t in tiers], alpha=0.35, label="tier capacity")
    right.plot(need, ys, "|", color="black", markersize=14, markeredgewidth=2, label="need (estimate)")
    for y, r in zip(ys, point_rows, strict=True):
        fraction = r.timing.memory_need_bytes / r.timing.memory_capacity_bytes if r.timing.memory_capacity_bytes else 0
        text = f" {format_percent(fraction)} of {format_bytes(r.timing.memory_capacity_bytes)}"
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
    kinds = {r.energy_kind for r in at_point.values()}
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
            kind = r.energy_kind
            modelled = kind == EnergyKind.MODELLED
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
    suffix = " (all modelled: estimates)" if kinds <= {EnergyKind.MODELLED} else ""
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


# ------------------------------------------------------------------------------------------------ dispatch


def draw(plan: FigurePlan, colors: dict[str, Any]) -> Figure:
    """The matplotlib figure for one plan of bench.report.figures."""
    if isinstance(plan, CostVsFigure):
        return plot_cost_vs(plan.panels, colors)
    if isinstance(plan, CostBarsFigure):
        return plot_cost_bars(plan.rows, colors, plan.tier_order)
    if isinstance(plan, QualityCostFigure):
        return plot_quality_vs_cost(plan, colors)
    if isinstance(plan, LatencyFigure):
        return plot_latency(plan.bars)
    if isinstance(plan, MemoryFigure):
        return plot_memory(
            plan.point, plan.rows, colors, measured_bytes=plan.measured_bytes, measured_label=plan.measured_label
        )
    if isinstance(plan, EnergyFigure):
        return plot_energy(plan.rows, plan.point, colors, plan.tier_order)
    raise TypeError(f"no drawing for figure {type(plan).__name__}")
