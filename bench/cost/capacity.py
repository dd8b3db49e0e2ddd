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
LATENCY_BASIS = "batch latency of isolated batches (no queueing); load tests will replace it"


@dataclass
class TierPlan:
    tier: str
    fits: bool
    meets_slo: bool
    chosen: TierCost | None  # the operating point used
    machines: int | None
    monthly_cost_usd: float | None
    cost_per_1m_recommendations_usd: float | None  # at the target load, not at full utilisation
    reason: str = ""  # why a tier is out


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
    fitting = [r for r in rows if r.timing.fits and r.requests_per_s]
    if not fitting:
        return TierPlan(tier, False, False, None, None, None, None, "model does not fit in memory")
    within = [r for r in fitting if (r.timing.batch_p99_s or math.inf) * 1e3 <= plan.slo_p99_ms]
    if not within:
        best = min(r.timing.batch_p99_s or math.inf for r in fitting) * 1e3
        return TierPlan(tier, True, False, None, None, None, None, f"best batch p99 {best:.0f} ms exceeds the SLO")
    chosen = max(within, key=lambda r: r.requests_per_s or 0.0)
    machines = math.ceil(plan.qps * (1 + plan.headroom) / (chosen.requests_per_s or math.inf))
    if chosen.hourly_cost_usd is None:
        return TierPlan(tier, True, True, chosen, machines, None, None, "no price in the catalogue")
    monthly = machines * chosen.hourly_cost_usd * plan.hours_per_day * DAYS_PER_MONTH
    served = plan.qps * chosen.point.top_n * 3600 * plan.hours_per_day * DAYS_PER_MONTH
    return TierPlan(tier, True, True, chosen, machines, monthly, monthly / served * 1e6)
