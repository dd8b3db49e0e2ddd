"""Capacity plan: machines per tier for a target QPS under a p99 latency SLO, and what that costs.

For each tier, among the operating points (usually a batch-size sweep) that fit in memory and whose batch
p99 meets the SLO, the one with the highest throughput per machine is chosen; machines = ceil(QPS x
(1 + headroom) / throughput per machine). Until load tests exist, throughput and p99 come from the batch
latency of isolated batches (measured or projected), which ignores queueing: the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.cost.model import TierCost

DAYS_PER_MONTH = 365.25 / 12
LATENCY_BASIS = (
    "a server load test's peak QPS under its p99 bound (LoadGen) where the tier has one at an SLO no looser than "
    "the plan's; elsewhere the batch latency of isolated batches (no queueing)"
)


@dataclass
class TierPlan:
    tier: str
    fits: bool
    meets_slo: bool
    chosen: TierCost | None  # the operating point used
    machines: int | None
    monthly_cost_usd: float | None
    cost_per_1m_recommendations_usd: float | None  # at the target load, not at full utilisation
    reason: str = ""  # why a tier is out, or where its throughput came from
    requests_per_s_per_machine: float | None = None


@dataclass
class CapacityPlan:
    scenario: str
    qps: float
    slo_p99_ms: float
    hours_per_day: float
    headroom: float
    tiers: list[TierPlan] = field(default_factory=list)
    latency_basis: str = LATENCY_BASIS

    @property
    def cheapest(self) -> TierPlan | None:
        eligible = [t for t in self.tiers if t.monthly_cost_usd is not None]
        return min(eligible, key=lambda t: t.monthly_cost_usd or 0.0, default=None)


def plan_capacity(
    rows: list[TierCost],
    *,
    qps: float,
    slo_p99_ms: float,
    hours_per_day: float = 24.0,
    headroom: float = 0.2,
) -> list[CapacityPlan]:
    """One plan per workload in `rows` (cost_table output), one line per tier. A workload is a scenario with
    everything fixed but the batch size: a plan chooses a batch size, never a shorter prompt or fewer candidates."""
    plans = []
    for scenario, workload in sorted({(row.point.scenario, row.point.workload) for row in rows}):
        name = scenario if workload == "default" else f"{scenario} [{workload}]"
        plan = CapacityPlan(name, qps, slo_p99_ms, hours_per_day, headroom)
        scenario_rows = [r for r in rows if (r.point.scenario, r.point.workload) == (scenario, workload)]
        for tier in dict.fromkeys(row.timing.tier for row in scenario_rows):
            plan.tiers.append(_plan_tier([r for r in scenario_rows if r.timing.tier == tier], plan))
        plans.append(plan)
    return plans


def _plan_tier(rows: list[TierCost], plan: CapacityPlan) -> TierPlan:
    tier = rows[0].timing.tier
    if not any(r.timing.fits for r in rows):
        return TierPlan(tier, False, False, None, None, None, None, "model does not fit in memory")
    fitting = [r for r in rows if r.timing.fits and r.requests_per_s]
    if not fitting:
        reason = "; ".join(dict.fromkeys(n for r in rows for n in r.notes)) or "no latency for this tier"
        return TierPlan(tier, True, False, None, None, None, None, reason)
    load_tested = [r for r in fitting if _load_test_qps(r, plan) is not None]
    if load_tested:  # a load test under a p99 bound beats isolated-batch latency
        chosen = max(load_tested, key=lambda r: _load_test_qps(r, plan) or 0.0)
        per_machine = _load_test_qps(chosen, plan) or 0.0
        note = "from a load test"
    else:
        within = [r for r in fitting if (r.timing.batch_p99_s or math.inf) * 1e3 <= plan.slo_p99_ms]
        if not within:
            best = min(r.timing.batch_p99_s or math.inf for r in fitting) * 1e3
            return TierPlan(tier, True, False, None, None, None, None, f"best batch p99 {best:.0f} ms exceeds the SLO")
        chosen = max(within, key=lambda r: r.requests_per_s or 0.0)
        per_machine = chosen.requests_per_s or 0.0
        note = ""
    if per_machine <= 0:
        return TierPlan(tier, True, False, None, None, None, None, "the load test found no QPS meeting its SLO")
    machines = math.ceil(plan.qps * (1 + plan.headroom) / per_machine)
    if chosen.hourly_cost_usd is None:
        return TierPlan(tier, True, True, chosen, machines, None, None, "no price in the catalogue", per_machine)
    # Rented machines are paid for the hours used; owned ones amortise their price around the clock.
    fixed = chosen.amortised_hourly_usd or 0.0
    monthly = machines * (fixed * 24 + (chosen.hourly_cost_usd - fixed) * plan.hours_per_day) * DAYS_PER_MONTH
    served = plan.qps * chosen.point.top_n * 3600 * plan.hours_per_day * DAYS_PER_MONTH
    return TierPlan(tier, True, True, chosen, machines, monthly, monthly / served * 1e6, note, per_machine)


def _load_test_qps(row: TierCost, plan: CapacityPlan) -> float | None:
    """QPS a server load test sustained on this tier under a p99 bound no looser than the plan's."""
    point = row.point
    if row.basis != "measured" or point.load_sustained_qps is None or point.load_p99_slo_ms is None:
        return None
    return point.load_sustained_qps if point.load_p99_slo_ms <= plan.slo_p99_ms else None
