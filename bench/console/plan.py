"""Capacity plans as rich tables (formatting only)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bench.core.formatting import MISSING, format_number, format_usd
from bench.cost.capacity import CapacityPlan


def plan_table(plan: CapacityPlan) -> Table:
    cheapest, settings = plan.cheapest, plan.settings
    table = Table(
        title=f"{escape(plan.scenario)}: {settings.qps:g} QPS, p99 <= {settings.slo_p99_ms:g} ms, "
        f"{settings.hours_per_day:g} h/day, headroom {settings.headroom:.0%}",
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
            str(chosen.basis) if chosen else MISSING,
            str(chosen.point.batch_size) if chosen else MISSING,
            format_number(tier.requests_per_s_per_machine),
            str(tier.machines) if tier.machines is not None else MISSING,
            format_usd(tier.monthly_cost_usd),
            format_usd(tier.cost_per_1m_recommendations_usd),
            escape(tier.reason),
        )
    return table
