"""Capacity plans as rich tables (formatting only)."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from bench.core.formatting import MISSING, format_number, format_usd
from bench.core.kinds import Basis
from bench.cost.capacity import CapacityPlan, TierPlan, plan_warnings
from bench.cost.quality import ndcg_text


def plan_output(plan: CapacityPlan) -> Table | str:
    """The plan's table, or one line (plain text, never wrapped) when no operating point reaches its quality bar."""
    bar = plan.quality
    if bar is None or bar.qualified:
        return plan_table(plan)
    best = max(bar.below, key=lambda p: p.evaluation.ndcg_mean if p.evaluation else 0.0, default=None)
    detail = [f"{len(bar.below)} below it"] + ([f"the best {ndcg_text(best)} ({best.point})"] if best else [])
    detail += [f"{len(bar.unevaluated)} without a quality evaluation"] if bar.unevaluated else []
    return f"{plan.scenario}: {bar.nothing_qualifies}: {', '.join(detail)}"


def plan_table(plan: CapacityPlan) -> Table:
    cheapest, settings = plan.cheapest, plan.settings
    owned = settings.include_owned
    among = "rented or owned" if owned else "rented; --include-owned to consider owned"
    bar = plan.quality
    what = "tier" if bar is None else "tier and lever"
    meeting = "the SLO" if bar is None else "the SLO and the quality bar"
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        show_edge=False,
        title=f"{escape(plan.scenario)}: {settings.qps:g} QPS, p99 <= {settings.slo_p99_ms:g} ms, "
        f"{settings.hours_per_day:g} h/day, headroom {settings.headroom:.0%}",
        caption=(
            f"cheapest {what} meeting {meeting} ({among}): {cheapest.tier}"
            + (f", {cheapest.chosen.point.levers}" if bar is not None and cheapest.chosen else "")
            if cheapest
            else f"no tier meets {meeting}"
        )
        + "".join(f"\n{escape(line)}" for line in (bar.notes() if bar is not None else []))
        + f"\nlatency basis: {plan.latency_basis}"
        + _weak_note(plan)
        + _launch_note(plan)
        + (
            "\nlever on a projected tier: an estimate that does not model an optimize lever there (only host time "
            "differs)"
            if bar is not None
            else ""
        )
        + "\nreq/s: per machine, * projected (an estimate), else measured; $/1M: USD per 1M recommendations"
        + " (not requests), rented; rented/mo, $/1M and owned/mo"
        + " at the target load (machines x hours used), not at full utilisation"
        + "".join(f"\nwarning: {escape(w)}" for w in plan_warnings(plan)),
    )
    columns = ["tier", "SLO", "batch", "req/s", "machines", "rented/mo", "$/1M", "owned/mo", "note"]
    if bar is not None:
        columns[3:3] = ["lever", "NDCG [95% CI]"]
    for column in columns:
        left = column in ("tier", "SLO", "note", "lever", "NDCG [95% CI]")
        widths = {"tier": 13, "SLO": 6}
        table.add_column(column, justify="left" if left else "right", overflow="fold", no_wrap=not left,
                         min_width=widths.get(column))  # fmt: skip
    ordered = sorted(
        plan.tiers, key=lambda t: (t.monthly_cost_usd(owned) is None, t.monthly_cost_usd(owned) or 0.0, t.tier)
    )
    for tier in ordered:
        chosen = tier.chosen
        projected = chosen is not None and chosen.basis == Basis.PROJECTED
        quality = [chosen.point.levers, ndcg_text(chosen.point)] if chosen else [MISSING, MISSING]
        table.add_row(
            tier.tier,
            slo_status(tier),
            chosen.point.batch_label if chosen else MISSING,
            *(quality if bar is not None else []),
            format_number(tier.requests_per_s_per_machine) + ("*" if projected else ""),
            str(tier.machines) if tier.machines is not None else MISSING,
            format_usd(tier.rented_monthly_usd),
            format_usd(tier.rented_cost_per_1m_usd),
            format_usd(tier.owned_monthly_usd),
            escape(_note(tier)),
        )
    return table


def slo_status(tier: TierPlan) -> str:
    """`meets`, `over` (its best p99 exceeds the SLO), `no fit` (memory), or `n/a` (no latency to judge)."""
    if tier.meets_slo:
        return "meets"
    if not tier.fits:
        return "no fit"
    return "over" if tier.has_latency else "n/a"


def _note(tier: TierPlan) -> str:
    launch_bound = "launch-bound" if _launch_bound(tier) else ""
    return "; ".join(part for part in (tier.reason, launch_bound, "weak p99" if tier.slo_weak else "") if part)


def _launch_bound(tier: TierPlan) -> bool:
    return tier.chosen is not None and tier.chosen.timing.llm_bound == "launch"


def _launch_note(plan: CapacityPlan) -> str:
    """Why GPU tiers can project the same requests/s: a small model's forwards wait on kernel launches."""
    if not any(_launch_bound(t) for t in plan.tiers):
        return ""
    return (
        "\nlaunch-bound: the LLM's forwards wait on kernel launches (eager PyTorch launches each operator from "
        "the CPU; bench/hardware/engines.yaml), not on the GPU's arithmetic or bandwidth, so such tiers differ only "
        "in price"
    )


def _weak_note(plan: CapacityPlan) -> str:
    weak = [t for t in plan.tiers if t.slo_weak and t.chosen is not None]
    if not weak:
        return ""
    counts = sorted({t.chosen.point.batches for t in weak if t.chosen})
    return (
        f"\nweak p99: the SLO check rests on p99s of {', '.join(map(str, counts))} isolated batches, close to "
        "their maximum; a load test (load: in the scenario) or more iterations gives a tail to plan on"
    )
