"""The prose under each report figure: what it shows, what is measured and what is estimated, and what it
leaves out. Text only (no matplotlib, no figure data structures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bench.core.kinds import EnergyKind
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.cost.quality import QualityCosts


def cost(extra: str) -> str:
    text = (
        "Filled markers / solid bars: latency measured on that tier. Hollow markers, dashed lines, hatched bars: "
        "roofline projection from the measured work (an estimate)."
    )
    return f"{text} {extra}".strip()


def cost_panels(left_out: Mapping[str, set[str]], skipped_groups: int, max_panels: int) -> str:
    notes = []
    if left_out:
        parts = [f"{tier} ({'; '.join(sorted(reasons))})" for tier, reasons in left_out.items()]
        notes.append("Not drawn where there is no cost figure: " + ", ".join(parts) + ".")
    if skipped_groups:
        notes.append(
            f"{skipped_groups} other group(s) of points (a single value of this variable, or beyond the first "
            f"{max_panels} panels) are not drawn; every point is in costs.csv."
        )
    return " ".join(notes)


def cost_bars(rows: Sequence[TierCost], max_points: int, why_no_cost: Callable[[TierCost], str]) -> str:
    missing = sorted({f"{r.timing.tier} ({why_no_cost(r)})" for r in rows if r.rented_cost_per_1m_usd is None})
    points = {id(r.point) for r in rows}
    text = "No variable (batch size, model size, sequence length) varies across these results."
    if len(points) > max_points:
        text += f" The first {max_points} of {len(points)} points are drawn; all are in costs.csv."
    if missing:
        text += " No cost figure: " + ", ".join(missing) + "."
    return text


def quality(costs: QualityCosts, min_ndcg: float | None, why_no_cost: Callable[[TierCost], str]) -> str:
    evaluations = {id(q.point): q.point.evaluation for q in costs.items}
    users = sorted({e.users for e in evaluations.values() if e is not None})
    text = (
        "x: rented USD per 1M recommendations on each tier (log); filled markers: measured on that tier, hollow "
        "markers: projected (estimates that do not model an optimize lever's effect: on a projected tier it and its "
        "baseline differ only in host-side time, a batching lever in its FLOPs and bytes too, and the CPU-only "
        "levers int8_dynamic and prepack are not projected onto GPUs). y: mean NDCG@k over "
        + "/".join(map(str, users))
        + " evaluation users with its 95% bootstrap interval (error bars), measured once on the benchmark machine "
        "and the same on every tier. Colour: tier; marker shape: lever. Black-edged markers joined by the grey line: "
        "the Pareto front (no other point at most as costly and at least as good). Dotted line: chance (a uniformly "
        "random ranking)."
    )
    if min_ndcg is not None:
        text += f" Dashed line: the capacity plan's quality bar, NDCG {min_ndcg:g}."
    if len(costs.groups) > 1:
        settings = ", ".join(f"top {n} of {k}" for n, k in costs.groups)
        text += f" NDCG compares within one setting ({settings}): the Pareto front is found within each."
    missing: dict[str, list[str]] = {}
    for q in costs.items:
        if q.cost is None:
            tiers = missing.setdefault(why_no_cost(q.row), [])
            tiers.extend([q.row.timing.tier] if q.row.timing.tier not in tiers else [])
    if missing:
        text += " Not drawn (no cost figure): " + "; ".join(f"{', '.join(t)}: {why}" for why, t in missing.items())
        text += "."
    if costs.unevaluated:
        text += f" {len(costs.unevaluated)} result(s) without a quality evaluation are not drawn."
    return text + " Every row is in quality.csv."


def latency(*, shown: int, total: int) -> str:
    text = (
        "Stage bars are each stage's median (p50) per batch; stage medians need not add up to the end-to-end "
        "median. Markers: end-to-end p50 and p99 per batch. Measured on the machine that ran the benchmark."
    )
    if shown < total:
        text += f" Showing the {shown} slowest of {total} results; every result is in latency.csv."
    return text


def memory(point: OperatingPoint, measured_label: str | None, does_not_fit: Sequence[str]) -> str:
    return (
        f"Analytic estimate (weights + KV cache + activations) for {point.scenario} [{point.point}], "
        "rescaled to the dtype each tier would run in; capacity is the catalogue's memory per device."
        + (f" Dotted line: {measured_label} on the benchmark machine." if measured_label else "")
        + (f" Does not fit: {', '.join(does_not_fit)}." if does_not_fit else "")
    )


def energy(point: OperatingPoint, rows: Sequence[TierCost], bases: Mapping[str, list[str]]) -> str:
    kinds = {r.energy_kind for r in rows if r.energy_j_per_recommendation is not None}
    missing = sorted({r.timing.tier for r in rows if r.point is point and r.energy_j_per_recommendation is None})
    text = f"Bars at {point.scenario} [{point.point}]; grey dots: the other points. "
    if kinds <= {EnergyKind.MODELLED}:
        text += "Every figure here is modelled from TDP, an estimate, not a measurement. "
    else:
        text += (
            "Solid bars come from an energy counter on the benchmark machine; hatched bars are modelled from TDP, "
            "estimates. "
        )
    text += "Bases: " + "; ".join(f"{basis} on {', '.join(tiers)}" for basis, tiers in bases.items()) + ". "
    if missing:
        text += f"No figure (does not fit or no latency): {', '.join(missing)}."
    return text.strip()
