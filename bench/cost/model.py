"""Dollar cost per recommendation on each tier, from measured or projected batch latency.

cost per 1M recommendations = hourly cost / recommendations per hour x 1e6, at the operating point's batch
size with batches served back to back. The hourly cost is the on-demand price, or for owned hardware the
purchase price spread over its lifetime plus energy x PUE x electricity price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.core.errors import InputError
from bench.core.formatting import to_ms
from bench.core.kinds import Basis, EnergyKind
from bench.cost.projection import (
    Efficiency,
    OperatingPoint,
    TierTiming,
    calibrate,
    default_efficiency,
    measured,
    project,
)
from bench.hardware.tiers import Tier, tier_for_machine


@dataclass(kw_only=True)
class TierCost:
    point: OperatingPoint
    timing: TierTiming
    requests_per_s: float | None = None
    recommendations_per_s: float | None = None
    hourly_cost_usd: float | None = None
    cost_per_1m_recommendations_usd: float | None = None
    energy_j_per_recommendation: float | None = None
    energy_basis: str | None = None  # the tracker's method, or "modelled: TDP x projected time" (an estimate)
    energy_kind: EnergyKind | None = None
    projection_error: float | None = None  # projected / measured - 1, where both exist
    notes: list[str] = field(default_factory=list)
    amortised_hourly_usd: float | None = None  # owned hardware: the part of the hourly cost paid around the clock

    @property
    def basis(self) -> Basis:
        return self.timing.basis


def hourly_cost(tier: Tier, average_watts: float | None) -> float | None:
    """USD per device-hour: for owned hardware, amortised purchase + energy x PUE x electricity price (at the
    measured or modelled draw); otherwise the on-demand price split over the instance's devices."""
    if tier.owned is not None:
        watts = average_watts if average_watts is not None else tier.tdp_watts
        return tier.owned.amortised_per_hour + tier.owned.energy_cost_per_hour(watts)
    return tier.price_per_device_hour


def cost_on_tier(point: OperatingPoint, timing: TierTiming, tier: Tier) -> TierCost:
    if not timing.fits or timing.batch_p50_s is None:
        return TierCost(point=point, timing=timing, notes=list(timing.notes))
    requests_per_s = point.batch_size / timing.batch_p50_s
    if timing.basis == Basis.MEASURED and point.load_sustained_qps:
        requests_per_s = point.load_sustained_qps  # a load test's sustained QPS, not isolated batches
    recommendations_per_s = requests_per_s * point.top_n
    if timing.basis == Basis.MEASURED and point.energy_j_per_batch is not None:
        joules_per_batch = point.energy_j_per_batch
        energy_basis = f"{point.energy_method}{'' if point.energy_method.measured else ' (estimate)'}"
        energy_kind = EnergyKind.MEASURED if point.energy_method.measured else EnergyKind.MODELLED
    else:
        joules_per_batch = tier.tdp_watts * timing.batch_p50_s
        energy_basis = f"modelled: TDP x {timing.basis} batch time (estimate)"
        energy_kind = EnergyKind.MODELLED
    average_watts = joules_per_batch / timing.batch_p50_s
    hourly = hourly_cost(tier, average_watts)
    per_1m = hourly / (recommendations_per_s * 3600) * 1e6 if hourly is not None else None
    return TierCost(
        amortised_hourly_usd=tier.owned.amortised_per_hour if tier.owned is not None else None,
        point=point,
        timing=timing,
        requests_per_s=requests_per_s,
        recommendations_per_s=recommendations_per_s,
        hourly_cost_usd=hourly,
        cost_per_1m_recommendations_usd=per_1m,
        energy_j_per_recommendation=joules_per_batch / (point.batch_size * point.top_n),
        energy_basis=energy_basis,
        energy_kind=energy_kind,
        notes=list(timing.notes),
    )


def measured_tier(point: OperatingPoint, tiers: dict[str, Tier], override: str | None = None) -> Tier | None:
    """The catalogue tier a result was measured on: the override, the tier recorded in the result, or the
    one its machine matches."""
    if override:
        if override not in tiers:
            raise InputError(f"--measured-on: unknown tier {override!r}; known tiers: {', '.join(tiers)}")
        return tiers[override]
    if point.hardware_tier in tiers:
        return tiers[point.hardware_tier]
    return tier_for_machine(
        device=point.device, device_name=point.device_name, logical_cores=point.logical_cores, tiers=tiers
    )


def cost_table(
    points: list[OperatingPoint], tiers: dict[str, Tier], *, measured_on: str | None = None
) -> list[TierCost]:
    """Every point on every tier: measured where it was measured, projected elsewhere (with efficiencies
    calibrated from a measurement on that tier when one exists), and the projection error where both exist."""
    home = {p.path: measured_tier(p, tiers, measured_on) for p in points}
    calibrated = _calibrations(points, home)
    rows: list[TierCost] = []
    for point in points:
        for tier in tiers.values():
            if home[point.path] is tier:
                row = cost_on_tier(point, measured(point, tier), tier)
                uncalibrated = project(point, tier, default_efficiency(tier))
                if uncalibrated.batch_p50_s and row.timing.batch_p50_s:
                    row.projection_error = uncalibrated.batch_p50_s / row.timing.batch_p50_s - 1
            else:
                row = cost_on_tier(point, project(point, tier, _efficiency_for(tier, calibrated)), tier)
            rows.append(row)
    return rows


def _calibrations(points: list[OperatingPoint], home: dict[str, Tier | None]) -> dict[str, tuple[Tier, Efficiency]]:
    """The first measured point on each tier calibrates that tier."""
    calibrated: dict[str, tuple[Tier, Efficiency]] = {}
    for point in points:
        tier = home[point.path]
        if tier is not None and tier.name not in calibrated:
            calibrated[tier.name] = (tier, calibrate(point, tier))
    return calibrated


def _efficiency_for(tier: Tier, calibrated: dict[str, tuple[Tier, Efficiency]]) -> Efficiency:
    """The tier's own calibration; else a measured tier of the same kind (same software stack, e.g. torch on a
    CPU) scales this tier's defaults by the factor it found; else the catalogue defaults."""
    if tier.name in calibrated:
        return calibrated[tier.name][1]
    same_kind = [(t, e) for t, e in calibrated.values() if t.kind == tier.kind]
    if not same_kind:
        return default_efficiency(tier)
    reference, efficiency = same_kind[0]
    compute_scale = efficiency.compute / reference.compute_efficiency
    memory_scale = efficiency.memory / reference.memory_efficiency
    return Efficiency(
        compute=min(1.0, tier.compute_efficiency * compute_scale),
        memory=min(1.0, tier.memory_efficiency * memory_scale),
        source=f"{efficiency.source}, scaled from {reference.name} (same kind)",
    )


def row_dict(row: TierCost) -> dict[str, Any]:
    """A flat, CSV-ready view of one row."""
    timing, point = row.timing, row.point
    return {
        "scenario": point.scenario,
        "point": point.point,
        "model": point.model,
        "params": point.params,
        "batch_size": point.batch_size,
        "max_prompt_tokens": point.max_prompt_tokens,
        "prompt_tokens_mean": point.prompt_tokens_mean,
        "tier": timing.tier,
        "basis": str(timing.basis),
        "dtype": timing.dtype,
        "fits": timing.fits,
        "memory_need_gb": timing.memory_need_bytes / 1e9,
        "memory_capacity_gb": timing.memory_capacity_bytes / 1e9,
        "batch_p50_ms": to_ms(timing.batch_p50_s),
        "batch_p99_ms": to_ms(timing.batch_p99_s),
        "requests_per_s": row.requests_per_s,
        "recommendations_per_s": row.recommendations_per_s,
        "hourly_cost_usd": row.hourly_cost_usd,
        "cost_per_1m_recommendations_usd": row.cost_per_1m_recommendations_usd,
        "energy_j_per_recommendation": row.energy_j_per_recommendation,
        "energy_basis": row.energy_basis,
        "energy_kind": str(row.energy_kind) if row.energy_kind else None,
        "llm_bound": timing.llm_bound,
        "efficiency_source": timing.efficiency.source if timing.efficiency else None,
        "projection_error": row.projection_error,
        "result": point.path,
    }
