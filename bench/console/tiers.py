"""`recbench tiers`: the hardware tier catalogue as a readable table (rich). Formatting only."""

from __future__ import annotations

from collections.abc import Mapping

from rich.markup import escape
from rich.table import Table

from bench.core.formatting import MISSING, format_number, format_usd
from bench.hardware.tiers import Tier


def tiers_table(tiers: Mapping[str, Tier]) -> Table:
    """One row per tier, in catalogue order. Figures the catalogue marks unverified end in `*`."""
    table = Table(title="Hardware tiers", caption="* unverified figure; peaks are dense, per device")
    table.add_column("tier", no_wrap=True)
    table.add_column("kind")
    table.add_column("bf16 TFLOPS", justify="right")
    table.add_column("fp32 TFLOPS", justify="right")
    table.add_column("memory GB", justify="right")
    table.add_column("bandwidth GB/s", justify="right")
    table.add_column("TDP W", justify="right")
    table.add_column("$/h", justify="right")
    table.add_column("price source (date)")
    for tier in tiers.values():
        table.add_row(
            escape(tier.name),
            tier.kind if tier.devices_per_instance == 1 else f"{tier.kind} x{tier.devices_per_instance}",
            _flops(tier, "bf16"),
            _flops(tier, "fp32"),
            _mark(tier, "memory_gb", format_number(tier.memory_bytes / 1e9)),
            _mark(tier, "bandwidth_gb_s", format_number(tier.bandwidth_bytes_per_s / 1e9)),
            _mark(tier, "tdp_watts", format_number(tier.tdp_watts)),
            _price(tier),
            escape(_price_source(tier)),
        )
    return table


def _mark(tier: Tier, field: str, text: str) -> str:
    return text if tier.verified(field) else f"{text}*"


def _flops(tier: Tier, key: str) -> str:
    flops = tier.peak_flops.get(key)
    if flops is None:
        return MISSING
    return _mark(tier, f"tflops.{key}", format_number(flops / 1e12))


def _price(tier: Tier) -> str:
    if tier.price_per_hour is None:
        return MISSING
    return _mark(tier, "price", format_number(tier.price_per_hour, significant=4))


def _price_source(tier: Tier) -> str:
    parts = []
    if tier.price_per_hour is not None:
        parts.append(f"{tier.price_source} ({tier.price_date})")
    if tier.owned is not None:
        parts.append(
            f"owned: {format_usd(tier.owned.purchase_price_usd)} over {tier.owned.lifetime_years:g} y "
            f"({tier.owned.date}) = {tier.owned_cost_per_hour:.3f} $/h at TDP"
        )
    return "; ".join(parts)
