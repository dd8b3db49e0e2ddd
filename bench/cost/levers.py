"""What each lever does against its baseline: latency, cost per 1M recommendations and ranking quality.

A lever is an `optimize` setting or a batching one (`batching.padding: bucketed | packed`). Its baseline is the
result whose resolved scenario is identical but for those (its name, description and sweep bookkeeping aside:
OperatingPoint.lever_key), measured on the same machine, with the default levers; failing that, for a point that
pulls both kinds, the one holding its `optimize` levers with padded batches, then the one holding its batching
without `optimize` levers (find_baseline). Where several qualify, the one of the same scenario, then the newest.
Latency is the end-to-end batch p50, measured on that machine. Cost per 1M recommendations is on every tier:
measured on the tier the results ran on, projected (an estimate) elsewhere. The roofline projects each point's own
FLOPs and bytes: an `optimize` lever leaves them as its baseline's, so its effect on the LLM is not modelled on a
projected tier (only host-side time differs); a batching lever changes them (the padding computed), and that much of
its effect is. Quality change is the paired difference of per-user NDCG (lever - baseline) over the same evaluation
users, with a paired bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core.formatting import to_ms
from bench.core.kinds import Basis
from bench.core.stats import paired_difference_interval
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.cost.quality import varying_fields
from bench.scenarios.spec import NO_LEVER

BASELINE = NO_LEVER
NO_BASELINE = "no baseline measured"
# On a projected tier's row the latency columns are still the measured ones; only the cost is that tier's.
PROJECTED_TIER_NOTE = (
    "batch_p50 columns are the measured tier's; this tier's costs are projected, and a projection does not model an "
    "optimize lever's effect on the LLM (only host-side time differs; a batching lever's FLOPs and bytes are)"
)
PAIRED_RESAMPLES = 2000


@dataclass(frozen=True, kw_only=True)
class QualityDelta:
    """NDCG lever - baseline, paired over the same users, with its 95% paired bootstrap interval."""

    mean: float
    low: float
    high: float
    users: int

    @property
    def significant(self) -> bool:
        return not (self.low <= 0.0 <= self.high)

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "not significant"
        return "higher (significant)" if self.mean > 0 else "lower (significant)"


@dataclass(kw_only=True)
class LeverComparison:
    lever: OperatingPoint
    baseline: OperatingPoint | None
    fields: str  # the identifying fields that vary among the compared results ("scoring likelihood")
    costs: list[tuple[TierCost, TierCost | None]] = field(default_factory=list)  # per tier: (lever, baseline)
    quality: QualityDelta | None = None
    quality_note: str = ""  # why there is no quality change

    @property
    def label(self) -> str:
        return f"{self.lever.levers}, {self.fields}" if self.fields else self.lever.levers

    @property
    def p50_change(self) -> float | None:
        if self.baseline is None:
            return None
        return percent_change(self.lever.batch_p50_s, self.baseline.batch_p50_s)

    def measured(self) -> tuple[TierCost, TierCost | None] | None:
        """(lever, baseline) on the tier the lever was measured on."""
        return next((pair for pair in self.costs if pair[0].basis == Basis.MEASURED), None)

    def cheapest_gpu(self, gpu_tiers: frozenset[str]) -> tuple[TierCost, TierCost | None] | None:
        """(lever, baseline) on the GPU tier where the baseline (the lever, without one) costs least per 1M."""
        pairs = [pair for pair in self.costs if pair[0].timing.tier in gpu_tiers]

        def cost(pair: tuple[TierCost, TierCost | None]) -> float | None:
            reference = pair[1] if self.baseline is not None else pair[0]
            return reference.rented_cost_per_1m_usd if reference is not None else None

        priced = [pair for pair in pairs if cost(pair) is not None]
        return min(priced, key=lambda pair: (cost(pair) or 0.0, pair[0].timing.tier), default=None)


def percent_change(new: float | None, old: float | None) -> float | None:
    """(new - old) / old, or None where either is missing or old is 0."""
    if new is None or old is None or old == 0:
        return None
    return new / old - 1


def find_baseline(lever: OperatingPoint, points: Sequence[OperatingPoint]) -> OperatingPoint | None:
    """The result identical to `lever` but for its levers, on the same machine, with the default levers; failing
    that, where `lever` pulls both kinds, the one that holds its `optimize` levers with padded batches, then the one
    that holds its batching without `optimize` levers (a sweep of one kind with the other fixed). Of several, the
    one of the same scenario first, then the newest (then by path, so the choice never depends on input order)."""
    alike = [p for p in points if p is not lever and p.lever_key == lever.lever_key and p.machine == lever.machine]
    held_fixed = [(BASELINE, None)]
    if lever.optimize != BASELINE and lever.batching is not None:
        held_fixed += [(lever.optimize, None), (BASELINE, lever.batching)]
    for optimize, batching in held_fixed:
        candidates = [p for p in alike if (p.optimize, p.batching) == (optimize, batching)]
        if candidates:
            return max(candidates, key=lambda p: (p.scenario == lever.scenario, p.created_at, p.path))
    return None


def paired_quality(
    lever: OperatingPoint, baseline: OperatingPoint, *, resamples: int = PAIRED_RESAMPLES
) -> tuple[QualityDelta | None, str]:
    """The paired NDCG change, or None and why not."""
    if lever.evaluation is None and baseline.evaluation is None:
        return None, "n/a: neither has a quality evaluation"
    if baseline.evaluation is None:
        return None, "n/a: the baseline has no quality evaluation"
    if lever.evaluation is None:
        return None, "n/a: the lever has no quality evaluation"
    if lever.evaluation.user_ids != baseline.evaluation.user_ids:
        return None, "n/a: evaluated on different users"
    mean, low, high = paired_difference_interval(baseline.evaluation.ndcg, lever.evaluation.ndcg, resamples=resamples)
    return QualityDelta(mean=mean, low=low, high=high, users=lever.evaluation.users), ""


def compare_levers(rows: Sequence[TierCost]) -> list[LeverComparison]:
    """One comparison per result with a lever pulled (`optimize` or batching), in the order of `rows`; a lever
    with no baseline among them says so (NO_BASELINE)."""
    points = list({id(r.point): r.point for r in rows}.values())
    levers = [p for p in points if p.levers != BASELINE]
    pairs = [(lever, find_baseline(lever, points)) for lever in levers]
    shown = [p for pair in pairs for p in pair if p is not None]
    varying = varying_fields(shown)
    comparisons = []
    for lever, baseline in pairs:
        comparison = LeverComparison(lever=lever, baseline=baseline, fields=varying.get(id(lever), ""))
        baseline_rows = {r.timing.tier: r for r in rows if r.point is baseline}
        comparison.costs = [(r, baseline_rows.get(r.timing.tier)) for r in rows if r.point is lever]
        if baseline is None:
            comparison.quality_note = NO_BASELINE
        else:
            comparison.quality, comparison.quality_note = paired_quality(lever, baseline)
        comparisons.append(comparison)
    return comparisons


LEVER_COLUMNS = [
    "scenario",
    "point",
    "lever",
    "optimize",
    "batching",
    "scoring_mode",
    "baseline_point",
    "baseline_result",
    "tier",
    "basis",
    "batch_p50_ms",
    "baseline_batch_p50_ms",
    "batch_p50_change",
    "rented_cost_per_1m_recommendations_usd",
    "baseline_rented_cost_per_1m_recommendations_usd",
    "rented_cost_change",
    "ndcg_mean",
    "baseline_ndcg_mean",
    "delta_ndcg",
    "delta_ndcg_ci_low",
    "delta_ndcg_ci_high",
    "quality_verdict",
    "note",
    "result",
]


def lever_dicts(comparison: LeverComparison) -> list[dict[str, Any]]:
    """CSV-ready rows, one per tier: the lever against its baseline there (latency is the measured one)."""
    lever, baseline, delta = comparison.lever, comparison.baseline, comparison.quality
    common = {
        "scenario": lever.scenario,
        "point": lever.point,
        "lever": comparison.label,
        "optimize": lever.optimize,
        "batching": lever.batching_setting,
        "scoring_mode": lever.scoring_mode,
        "baseline_point": baseline.point if baseline else None,
        "baseline_result": baseline.path if baseline else None,
        "batch_p50_ms": to_ms(lever.batch_p50_s),
        "baseline_batch_p50_ms": to_ms(baseline.batch_p50_s) if baseline else None,
        "batch_p50_change": comparison.p50_change,
        "ndcg_mean": lever.evaluation.ndcg_mean if lever.evaluation else None,
        "baseline_ndcg_mean": baseline.evaluation.ndcg_mean if baseline and baseline.evaluation else None,
        "delta_ndcg": delta.mean if delta else None,
        "delta_ndcg_ci_low": delta.low if delta else None,
        "delta_ndcg_ci_high": delta.high if delta else None,
        "quality_verdict": delta.verdict if delta else comparison.quality_note,
        "result": lever.path,
    }
    rows = []
    for row, base in comparison.costs:
        lever_cost = row.rented_cost_per_1m_usd
        base_cost = base.rented_cost_per_1m_usd if base else None
        rows.append(
            {
                **common,
                "tier": row.timing.tier,
                "basis": str(row.basis),
                "rented_cost_per_1m_recommendations_usd": lever_cost,
                "baseline_rented_cost_per_1m_recommendations_usd": base_cost,
                "rented_cost_change": percent_change(lever_cost, base_cost),
                "note": _tier_note(row, has_baseline=baseline is not None),
            }
        )
    return rows


def _tier_note(row: TierCost, *, has_baseline: bool) -> str:
    if not has_baseline:
        return NO_BASELINE
    if row.rented_cost_per_1m_usd is None:
        return "; ".join(row.notes)  # why this tier has no cost (a CPU-only lever on a GPU, a tier it does not fit)
    return PROJECTED_TIER_NOTE if row.basis == Basis.PROJECTED else ""
