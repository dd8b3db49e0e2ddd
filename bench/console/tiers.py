"""`recbench tiers`: the hardware tier catalogue as a readable table (rich). Formatting only.

The table keeps to figures so it fits a terminal; each price's source is a numbered note under it.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bench.core.formatting import MISSING, format_number
from bench.hardware.tiers import Tier


def tiers_table(tiers: Mapping[str, Tier]) -> Group:
    """One row per tier, in catalogue order, then the numbered price sources. Figures the catalogue marks
    unverified end in `*`."""
    sources: dict[str, int] = {}
    # No vertical rules and no cell padding: ten columns fit an 80-column terminal.
    table = Table(
        title="Hardware tiers",
        caption="* unverified; TF: dense peak TFLOP/s per device; prices: USD per device-hour; kind: a CPU tier's ISA",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        show_edge=False,
    )
    for name, justify in (("tier", "left"), ("kind", "left"), ("bf16 TF", "right"),
                          ("fp32 TF", "right"), ("mem GB", "right"), ("GB/s", "right"), ("TDP W", "right"),
                          ("rented", "right"), ("owned", "right"), ("src", "right")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for tier in tiers.values():
        table.add_row(
            escape(tier.name),
            _kind(tier),
            _flops(tier, "bf16"),
            _flops(tier, "fp32"),
            _mark(tier, "memory_gb", format_number(tier.memory_bytes / 1e9)),
            _mark(tier, "bandwidth_gb_s", format_number(tier.bandwidth_bytes_per_s / 1e9)),
            _mark(tier, "tdp_watts", format_number(tier.tdp_watts)),
            _rented(tier),
            _owned(tier),
            str(sources.setdefault(source, len(sources) + 1)) if (source := _sources(tier)) else "",
        )
    notes = [Text(f"[{n}] {source}") for source, n in sources.items()]
    owned = Text("owned $/h: purchase price amortised over its lifetime + electricity x PUE at TDP")
    return Group(table, owned, *notes)


def _kind(tier: Tier) -> str:
    """A CPU tier by its ISA level (what a machine must have to match it), a GPU tier by its device count."""
    if tier.kind == "cpu":
        return tier.isa or "cpu"
    return "gpu" if tier.devices_per_instance == 1 else f"gpu x{tier.devices_per_instance}"


def _mark(tier: Tier, field: str, text: str) -> str:
    return text if tier.verified(field) else f"{text}*"


def _flops(tier: Tier, key: str) -> str:
    flops = tier.peak_flops.get(key)
    if flops is None:
        return MISSING
    return _mark(tier, f"tflops.{key}", format_number(flops / 1e12))


def _rented(tier: Tier) -> str:
    price = tier.price_per_device_hour
    return MISSING if price is None else _mark(tier, "price", format_number(price, significant=3))


def _owned(tier: Tier) -> str:
    if tier.owned is None or tier.owned_cost_per_hour is None:
        return MISSING
    return _mark(tier, "owned", format_number(tier.owned_cost_per_hour / tier.devices_per_instance, significant=3))


def _sources(tier: Tier) -> str:
    found = []
    if tier.price_per_hour is not None:
        found.append(f"rented: {tier.price_source} ({tier.price_date})")
    if tier.owned is not None:
        found.append(
            f"owned: ${tier.owned.purchase_price_usd:,.0f} over {tier.owned.lifetime_years:g} years, "
            f"{tier.owned.source} ({tier.owned.date})"
        )
    return "; ".join(found)
