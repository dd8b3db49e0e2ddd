"""Capacity plans as rich tables (formatting only)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bench.cost.capacity import CapacityPlan


def plan_table(plan: CapacityPlan) -> Table:
    cheapest = plan.cheapest
    table = Table(
        title=f"{escape(plan.scenario)}: {plan.qps:g} QPS, p99 <= {plan.slo_p99_ms:g} ms, "
        f"{plan.hours_per_day:g} h/day, headroom {plan.headroom:.0%}",
        caption=(f"cheapest tier meeting the SLO: {cheapest.tier}" if cheapest else "no tier meets the SLO")
        + f"\nlatency basis: {plan.latency_basis}",
    )
    for column in ("tier", "fits", "meets SLO", "basis", "batch", "req/s per machine", "machines",
                   "$/month", "$ per 1M recs", "note"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("tier", "basis", "note") else "right")
    for tier in sorted(plan.tiers, key=lambda t: (t.monthly_cost_usd is None, t.monthly_cost_usd or 0.0)):
        chosen = tier.chosen
        table.add_row(
            tier.tier,
            "yes" if tier.fits else "no",
            "yes" if tier.meets_slo else "no",
            chosen.basis if chosen else "-",
            str(chosen.point.batch_size) if chosen else "-",
            f"{tier.requests_per_s_per_machine:.3g}" if tier.requests_per_s_per_machine else "-",
            str(tier.machines) if tier.machines is not None else "-",
            f"{tier.monthly_cost_usd:,.0f}" if tier.monthly_cost_usd is not None else "-",
            f"{tier.cost_per_1m_recommendations_usd:.3g}" if tier.cost_per_1m_recommendations_usd is not None else "-",
            tier.reason,
        )
    return table
