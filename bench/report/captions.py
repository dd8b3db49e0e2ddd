"""The prose under each report figure: what it shows, what is measured and what is estimated, and what it
leaves out. Text only (no matplotlib, no figure data structures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bench.core.kinds import EnergyKind
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint


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
