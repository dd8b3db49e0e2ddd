"""Capacity plan: machines per tier for a target QPS under a p99 latency SLO, and what that costs.

For each tier, among the operating points (usually a batch-size sweep) that fit in memory and whose batch
p99 meets the SLO, the one with the highest throughput per machine is chosen; machines = ceil(QPS x
(1 + headroom) / throughput per machine). Until load tests exist, throughput and p99 come from the batch
latency of isolated batches (measured or projected), which ignores queueing: the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.core.errors import InputError
from bench.core.kinds import Basis
from bench.cost.model import TierCost

DAYS_PER_MONTH = 365.25 / 12
LATENCY_BASIS = (
    "a server load test's peak QPS under its p99 bound (LoadGen) where the tier has one at an SLO no looser than "
    "the plan's; elsewhere the batch latency of isolated batches (no queueing)"
)


@dataclass(frozen=True, kw_only=True)
class PlanSettings:
    """What a capacity plan is for, checked once on construction (InputError naming the command-line flag)."""

    qps: float  # target requests per second
    slo_p99_ms: float  # p99 latency bound
    hours_per_day: float = 24.0  # hours a day at that load
    headroom: float = 0.2  # spare capacity fraction

    def __post_init__(self) -> None:
        checks = [
            ("--qps", self.qps, lambda v: v > 0, "a finite number > 0"),
            ("--slo-p99-ms", self.slo_p99_ms, lambda v: v > 0, "a finite number > 0"),
            ("--hours-per-day", self.hours_per_day, lambda v: 0 < v <= 24, "in (0, 24]"),
            ("--headroom", self.headroom, lambda v: v >= 0, "a finite number >= 0"),
        ]
        for flag, value, ok, expected in checks:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and ok(value)):
                raise InputError(f"{flag}: must be {expected}, got {value!r}")


@dataclass(kw_only=True)
class TierPlan:
    tier: str
    fits: bool
    meets_slo: bool
    chosen: TierCost | None = None  # the operating point used
    machines: int | None = None
    monthly_cost_usd: float | None = None
    cost_per_1m_recommendations_usd: float | None = None  # at the target load, not at full utilisation
    reason: str = ""  # why a tier is out, or where its throughput came from
    requests_per_s_per_machine: float | None = None


@dataclass(kw_only=True)
class CapacityPlan:
    scenario: str
    settings: PlanSettings
    tiers: list[TierPlan] = field(default_factory=list)
    latency_basis: str = LATENCY_BASIS

    @property
    def cheapest(self) -> TierPlan | None:
        eligible = [t for t in self.tiers if t.monthly_cost_usd is not None]
        return min(eligible, key=lambda t: t.monthly_cost_usd or 0.0, default=None)


def plan_capacity(rows: list[TierCost], settings: PlanSettings) -> list[CapacityPlan]:
    """One plan per workload in `rows` (cost_table output), one line per tier. A workload is a scenario with
    everything fixed but the batch size: a plan chooses a batch size, never a shorter prompt or fewer candidates."""
    plans = []
    for scenario, workload in sorted({(row.point.scenario, row.point.workload) for row in rows}):
        name = scenario if workload == "default" else f"{scenario} [{workload}]"
        plan = CapacityPlan(scenario=name, settings=settings)
        scenario_rows = [r for r in rows if (r.point.scenario, r.point.workload) == (scenario, workload)]
        for tier in dict.fromkeys(row.timing.tier for row in scenario_rows):
            plan.tiers.append(_plan_tier([r for r in scenario_rows if r.timing.tier == tier], settings))
        plans.append(plan)
    return plans


def _plan_tier(rows: list[TierCost], settings: PlanSettings) -> TierPlan:
    tier = rows[0].timing.tier
    if not any(r.timing.fits for r in rows):
        return TierPlan(tier=tier, fits=False, meets_slo=False, reason="model does not fit in memory")
    fitting = [r for r in rows if r.timing.fits and r.requests_per_s]
    if not fitting:
        reason = "; ".join(dict.fromkeys(n for r in rows for n in r.notes)) or "no latency for this tier"
        return TierPlan(tier=tier, fits=True, meets_slo=False, reason=reason)
    load_tested = [r for r in fitting if _load_test_qps(r, settings) is not None]
    if load_tested:  # a load test under a p99 bound beats isolated-batch latency
        chosen = max(load_tested, key=lambda r: _load_test_qps(r, settings) or 0.0)
        per_machine = _load_test_qps(chosen, settings) or 0.0
        note = "from a load test"
    else:
        within = [r for r in fitting if (r.timing.batch_p99_s or math.inf) * 1e3 <= settings.slo_p99_ms]
        if not within:
            best = min(r.timing.batch_p99_s or math.inf for r in fitting) * 1e3
            return TierPlan(
                tier=tier, fits=True, meets_slo=False, reason=f"best batch p99 {best:.0f} ms exceeds the SLO"
            )
        chosen = max(within, key=lambda r: r.requests_per_s or 0.0)
        per_machine = chosen.requests_per_s or 0.0
        note = ""
    if per_machine <= 0:
        return TierPlan(tier=tier, fits=True, meets_slo=False, reason="the load test found no QPS meeting its SLO")
    machines = math.ceil(settings.qps * (1 + settings.headroom) / per_machine)
    found = {"tier": tier, "fits": True, "meets_slo": True, "chosen": chosen, "machines": machines,
             "requests_per_s_per_machine": per_machine}  # fmt: skip
    if chosen.hourly_cost_usd is None:
        return TierPlan(**found, reason="no price in the catalogue")
    # Rented machines are paid for the hours used; owned ones amortise their price around the clock.
    fixed = chosen.amortised_hourly_usd or 0.0
    hours = settings.hours_per_day
    monthly = machines * (fixed * 24 + (chosen.hourly_cost_usd - fixed) * hours) * DAYS_PER_MONTH
    served = settings.qps * chosen.point.top_n * 3600 * hours * DAYS_PER_MONTH
    return TierPlan(
        **found, monthly_cost_usd=monthly, cost_per_1m_recommendations_usd=monthly / served * 1e6, reason=note
    )


def _load_test_qps(row: TierCost, settings: PlanSettings) -> float | None:
    """QPS a server load test sustained on this tier under a p99 bound no looser than the plan's."""
    point = row.point
    if row.basis != Basis.MEASURED or point.load_sustained_qps is None or point.load_p99_slo_ms is None:
        return None
    return point.load_sustained_qps if point.load_p99_slo_ms <= settings.slo_p99_ms else None
