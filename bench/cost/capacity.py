"""Capacity plan: machines per tier for a target QPS under a p99 latency SLO, and what that costs.

For each tier, among the operating points (usually a batch-size sweep) that fit in memory and whose batch
p99 meets the SLO, the one with the highest throughput per machine is chosen; machines = ceil(QPS x
(1 + headroom) / throughput per machine). A server load test's sustained QPS under a p99 bound no looser than
the plan's beats isolated batches (it includes queueing); where there is none the plan says its SLO check comes
from isolated batches, and that it is weak when the p99 rests on fewer than 100 batches (close to the maximum).

Two monthly costs, never mixed: rented (on-demand price x machines x hours used) and owned (amortised purchase
around the clock + electricity for the hours used). "Cheapest" is among rented tiers unless owned tiers are
asked for (--include-owned).

With a quality bar (--min-ndcg), only operating points whose evaluation's mean NDCG@k reaches it take part, and the
levers (`optimize` and batching) become a choice like the batch size: a workload is then a scenario with everything
fixed but the batch size and the levers, and each tier gets the qualifying (lever, batch size) with the highest
throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.core.errors import InputError
from bench.core.kinds import Basis
from bench.core.stats import MIN_SAMPLES_FOR_P99
from bench.cost.model import TierCost
from bench.cost.projection import OperatingPoint
from bench.cost.quality import QualityScreen, is_lever_field, screen

DAYS_PER_MONTH = 365.25 / 12
# Upper bounds: beyond them a figure is a typo, and machine counts would overflow.
MAX_QPS = 1e9
MAX_HEADROOM = 100.0
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
    include_owned: bool = False  # may "cheapest" be an owned tier (amortised purchase) rather than rented
    min_ndcg: float | None = None  # quality bar: the evaluation's mean NDCG@k an operating point needs

    def __post_init__(self) -> None:
        checks = [
            ("--qps", self.qps, lambda v: 0 < v <= MAX_QPS, f"in (0, {MAX_QPS:g}]"),
            ("--slo-p99-ms", self.slo_p99_ms, lambda v: v > 0, "a finite number > 0"),
            ("--hours-per-day", self.hours_per_day, lambda v: 0 < v <= 24, "in (0, 24]"),
            ("--headroom", self.headroom, lambda v: 0 <= v <= MAX_HEADROOM, f"in [0, {MAX_HEADROOM:g}]"),
        ]
        if self.min_ndcg is not None:
            checks.append(("--min-ndcg", self.min_ndcg, lambda v: 0 <= v <= 1, "in [0, 1] (an NDCG)"))
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
    rented_monthly_usd: float | None = None
    rented_cost_per_1m_usd: float | None = None  # at the target load, not at full utilisation
    owned_monthly_usd: float | None = None
    owned_cost_per_1m_usd: float | None = None
    reason: str = ""  # why a tier is out, or where its throughput came from
    slo_basis: str = ""  # where the p99 compared with the SLO came from, and how strong that is
    slo_weak: bool = False  # the p99 behind the SLO check rests on fewer than MIN_SAMPLES_FOR_P99 batches
    has_latency: bool = True  # False: no figure for this tier (a CPU-only lever on a GPU), so no SLO verdict
    requests_per_s_per_machine: float | None = None

    def monthly_cost_usd(self, include_owned: bool = False) -> float | None:
        """The cost "cheapest" compares: rented, or the lower of rented and owned when owned is allowed."""
        costs = [self.rented_monthly_usd] + ([self.owned_monthly_usd] if include_owned else [])
        return min((c for c in costs if c is not None), default=None)


@dataclass(kw_only=True)
class CapacityPlan:
    scenario: str
    settings: PlanSettings
    tiers: list[TierPlan] = field(default_factory=list)
    latency_basis: str = LATENCY_BASIS
    quality: QualityScreen | None = None  # what the quality bar let through (--min-ndcg)

    @property
    def cheapest(self) -> TierPlan | None:
        owned = self.settings.include_owned
        eligible = [t for t in self.tiers if t.monthly_cost_usd(owned) is not None]
        return min(eligible, key=lambda t: (t.monthly_cost_usd(owned) or 0.0, t.tier), default=None)


def plan_warnings(plan: CapacityPlan) -> list[str]:
    """The warnings of the results a plan chose from (busy machine, weak statistics...), each once."""
    chosen = [t.chosen.point for t in plan.tiers if t.chosen is not None]
    return list(dict.fromkeys(f"{p.scenario} [{p.point}]: {w}" for p in chosen for w in p.warnings))


def plan_capacity(rows: list[TierCost], settings: PlanSettings) -> list[CapacityPlan]:
    """One plan per workload in `rows` (cost_table output), one line per tier. A workload is a scenario with
    everything fixed but the batch size: a plan chooses a batch size, never a shorter prompt or fewer candidates.
    With a quality bar (settings.min_ndcg) the levers are a choice too, among the points that reach the bar."""
    bar = settings.min_ndcg

    def workload(row: TierCost) -> tuple[str, str]:
        return (row.point.scenario, row.point.workload if bar is None else _workload_without_levers(row.point))

    plans = []
    for scenario, name_of_workload in sorted({workload(row) for row in rows}):
        name = scenario if name_of_workload == "default" else f"{scenario} [{name_of_workload}]"
        plan = CapacityPlan(scenario=name, settings=settings)
        scenario_rows = [r for r in rows if workload(r) == (scenario, name_of_workload)]
        if bar is not None:
            plan.quality = screen(list({id(r.point): r.point for r in scenario_rows}.values()), bar)
            qualified = {id(p) for p in plan.quality.qualified}
            scenario_rows = [r for r in scenario_rows if id(r.point) in qualified]
        for tier in dict.fromkeys(row.timing.tier for row in scenario_rows):
            plan.tiers.append(_plan_tier([r for r in scenario_rows if r.timing.tier == tier], settings))
        plans.append(plan)
    return plans


def _workload_without_levers(point: OperatingPoint) -> str:
    """The point's sweep values other than the batch size and the levers (`optimize`, batching)."""
    values = [f"{k}={v}" for k, v in point.sweep_values.items() if k != "batch_size" and not is_lever_field(k)]
    return ",".join(values) or "default"


def _plan_tier(rows: list[TierCost], settings: PlanSettings) -> TierPlan:
    tier = rows[0].timing.tier
    if not any(r.timing.fits for r in rows):
        return TierPlan(tier=tier, fits=False, meets_slo=False, reason="model does not fit in memory")
    fitting = [r for r in rows if r.timing.fits and r.requests_per_s]
    if not fitting:
        reason = "; ".join(dict.fromkeys(n for r in rows for n in r.notes)) or "no latency for this tier"
        return TierPlan(tier=tier, fits=True, meets_slo=False, reason=reason, has_latency=False)
    load_tested = [r for r in fitting if _load_test_qps(r, settings) is not None]
    if load_tested:  # a load test under a p99 bound beats isolated-batch latency
        chosen = max(load_tested, key=lambda r: _load_test_qps(r, settings) or 0.0)
        per_machine = _load_test_qps(chosen, settings) or 0.0
        note = "from a load test"
        slo_basis = f"load test p99 under a {chosen.point.load_p99_slo_ms:g} ms bound (queueing included)"
    else:
        within = [r for r in fitting if (r.timing.batch_p99_s or math.inf) * 1e3 <= settings.slo_p99_ms]
        if not within:
            best = min(r.timing.batch_p99_s or math.inf for r in fitting) * 1e3
            return TierPlan(
                tier=tier, fits=True, meets_slo=False, reason=f"best batch p99 {best:.0f} ms exceeds the SLO"
            )
        # Isolated batches judged the SLO, so their throughput is what a machine does (not a looser load test's).
        chosen = max(within, key=lambda r: r.isolated_requests_per_s or 0.0)
        per_machine = chosen.isolated_requests_per_s or 0.0
        note = ""
        slo_basis = isolated_batch_slo_basis(chosen)
    if per_machine <= 0:
        return TierPlan(tier=tier, fits=True, meets_slo=False, reason="the load test found no QPS meeting its SLO")
    machines = math.ceil(settings.qps * (1 + settings.headroom) / per_machine)
    plan = TierPlan(tier=tier, fits=True, meets_slo=True, chosen=chosen, machines=machines, reason=note,
                    slo_basis=slo_basis, slo_weak=not load_tested and chosen.point.batches < MIN_SAMPLES_FOR_P99,
                    requests_per_s_per_machine=per_machine)  # fmt: skip
    hours = settings.hours_per_day
    served_per_month = settings.qps * chosen.point.top_n * 3600 * hours * DAYS_PER_MONTH
    if chosen.rented_hourly_usd is not None:  # rented: paid for the hours used
        plan.rented_monthly_usd = machines * chosen.rented_hourly_usd * hours * DAYS_PER_MONTH
        plan.rented_cost_per_1m_usd = plan.rented_monthly_usd / served_per_month * 1e6
    if chosen.owned_hourly_usd is not None:  # owned: the purchase amortises around the clock
        fixed = chosen.amortised_hourly_usd or 0.0
        plan.owned_monthly_usd = machines * (fixed * 24 + (chosen.owned_hourly_usd - fixed) * hours) * DAYS_PER_MONTH
        plan.owned_cost_per_1m_usd = plan.owned_monthly_usd / served_per_month * 1e6
    if plan.rented_monthly_usd is None and plan.owned_monthly_usd is None:
        plan.reason = "no price in the catalogue"
    return plan


def isolated_batch_slo_basis(row: TierCost) -> str:
    """How much the p99 that met the SLO can be trusted, in words."""
    if row.point.load_mode is not None:  # batches of a LoadGen run: not isolated, their queueing not counted
        basis = f"batch p99, {row.timing.p99_basis} (queueing before a batch not counted)"
    else:
        basis = f"batch p99 of isolated batches, {row.timing.p99_basis} (no queueing)"
    if row.point.batches < MIN_SAMPLES_FOR_P99:
        basis += f"; weak: p99 of {row.point.batches} batches is close to their maximum"
    return basis


def _load_test_qps(row: TierCost, settings: PlanSettings) -> float | None:
    """QPS a server load test sustained on this tier under a p99 bound no looser than the plan's."""
    point = row.point
    if row.basis != Basis.MEASURED or point.load_sustained_qps is None or point.load_p99_slo_ms is None:
        return None
    return point.load_sustained_qps if point.load_p99_slo_ms <= settings.slo_p99_ms else None
