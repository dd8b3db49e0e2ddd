"""Dollar cost per recommendation on each tier, from measured or projected batch latency.

cost per 1M recommendations = hourly cost / recommendations per hour x 1e6, at the operating point's batch
size with batches served back to back. Two hourly costs, never mixed: RENTED (the on-demand price) and OWNED
(the purchase price spread over its lifetime plus energy x PUE x electricity price), each where the catalogue
has it.

Energy has one basis everywhere: an energy counter's reading on the tier a result was measured on, where the
machine has one (NVML, RAPL); otherwise, on every tier alike, TDP x batch time (an estimate).

Calibration (deterministic: the order results are given in changes nothing): each point measured on a tier says
how far the catalogue's default efficiencies are from what was measured; per tier and model the median of those
scales calibrates the tier (per tier over all models when a model has no point there); a tier with no point of its
own takes the median scale of the measured tiers of its kind; a GPU tier is never calibrated from a CPU.
"""

from __future__ import annotations

import statistics
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bench.core.device import Device
from bench.core.dtypes import catalogue_key
from bench.core.errors import InputError
from bench.core.formatting import to_ms
from bench.core.kinds import Basis, EnergyKind
from bench.cost.projection import (
    Efficiency,
    OperatingPoint,
    TierTiming,
    calibration_scale,
    default_efficiency,
    measured,
    measured_launch_overhead_us,
    project,
    projected_shell,
    target_dtype,
)
from bench.hardware.tiers import Tier, match_tier, tier_for_machine
from bench.scenarios.spec import NO_LEVER

MEASURED_ONLY_PREFIX = "measured-"  # the name of a tier made for a machine the catalogue does not know


@dataclass(kw_only=True)
class TierCost:
    point: OperatingPoint
    timing: TierTiming
    requests_per_s: float | None = None  # what the cost is computed at: a load test's sustained QPS where measured
    isolated_requests_per_s: float | None = None  # batch size / batch p50: isolated batches, no queueing
    recommendations_per_s: float | None = None
    rented_hourly_usd: float | None = None  # rented: the on-demand price per device
    rented_cost_per_1m_usd: float | None = None  # rented
    owned_hourly_usd: float | None = None  # owned: amortised purchase + energy at this point's draw
    owned_cost_per_1m_usd: float | None = None
    amortised_hourly_usd: float | None = None  # owned: the part of the hourly cost paid around the clock
    energy_j_per_recommendation: float | None = None
    energy_basis: str | None = None
    energy_kind: EnergyKind | None = None
    projection_error: float | None = None  # uncalibrated projection / measured - 1, on the measured tier
    notes: list[str] = field(default_factory=list)

    @property
    def basis(self) -> Basis:
        return self.timing.basis


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """What calibrated a tier: the median scale of the points measured on it, and which results they are."""

    tier: str
    kind: str  # cpu or gpu: a calibration carries only to tiers of its kind
    model: str | None  # None: every model measured on the tier
    scale: float  # default-efficiency projection / measured LLM time (median)
    efficiency: Efficiency
    results: tuple[str, ...]


@dataclass(kw_only=True)
class CostTable:
    rows: list[TierCost]
    tiers: dict[str, Tier]  # the catalogue plus any measured-only tier made for an unknown machine
    calibrations: list[Calibration]
    launch_overhead_us: float | None = None  # measured on a GPU result, replacing the catalogue's figure


def rented_hourly(tier: Tier) -> float | None:
    """On-demand USD per device-hour (the instance price split over its devices)."""
    return tier.price_per_device_hour


def owned_hourly(tier: Tier, average_watts: float | None) -> float | None:
    """USD per device-hour to own: amortised purchase + energy x PUE x electricity price at `average_watts`."""
    if tier.owned is None:
        return None
    watts = average_watts if average_watts is not None else tier.tdp_watts
    return tier.owned.amortised_per_hour + tier.owned.energy_cost_per_hour(watts)


def cost_on_tier(point: OperatingPoint, timing: TierTiming, tier: Tier) -> TierCost:
    if not timing.fits or timing.batch_p50_s is None:
        return TierCost(point=point, timing=timing, notes=list(timing.notes))
    isolated = point.per_batch / timing.batch_p50_s
    requests_per_s = isolated
    if timing.basis == Basis.MEASURED and point.load_sustained_qps:
        requests_per_s = point.load_sustained_qps  # a load test's sustained QPS, not isolated batches
    recommendations_per_s = requests_per_s * point.top_n
    joules_per_batch, energy_basis, energy_kind = _energy(point, timing, tier)
    # Draw while serving at the rate the cost is computed at: joules per request x requests per second.
    average_watts = joules_per_batch / point.per_batch * requests_per_s if joules_per_batch is not None else None
    rented, owned = rented_hourly(tier), owned_hourly(tier, average_watts)
    per_hour = recommendations_per_s * 3600
    return TierCost(
        point=point,
        timing=timing,
        requests_per_s=requests_per_s,
        isolated_requests_per_s=isolated,
        recommendations_per_s=recommendations_per_s,
        rented_hourly_usd=rented,
        rented_cost_per_1m_usd=rented / per_hour * 1e6 if rented is not None else None,
        owned_hourly_usd=owned,
        owned_cost_per_1m_usd=owned / per_hour * 1e6 if owned is not None else None,
        amortised_hourly_usd=tier.owned.amortised_per_hour if tier.owned is not None else None,
        energy_j_per_recommendation=(
            joules_per_batch / (point.per_batch * point.top_n) if joules_per_batch is not None else None
        ),
        energy_basis=energy_basis,
        energy_kind=energy_kind,
        notes=list(timing.notes),
    )


def _energy(
    point: OperatingPoint, timing: TierTiming, tier: Tier
) -> tuple[float | None, str | None, EnergyKind | None]:
    """(joules per batch, basis, kind): a meter's reading where the point was measured on a machine with one,
    else TDP x batch time, the same estimate on every tier."""
    if timing.basis == Basis.MEASURED and point.energy_method.measured and point.energy_j_per_batch is not None:
        return point.energy_j_per_batch, f"measured: {point.energy_method}", EnergyKind.MEASURED
    if tier.tdp_watts <= 0 or timing.batch_p50_s is None:
        return None, "no TDP for this machine: no energy figure", None
    return (
        tier.tdp_watts * timing.batch_p50_s,
        f"modelled: TDP x {timing.basis} batch time (estimate)",
        (EnergyKind.MODELLED),
    )


def measured_tier(point: OperatingPoint, tiers: dict[str, Tier]) -> Tier | None:
    """The catalogue tier a result was measured on: the one its machine's fingerprint matches (a GPU by name).
    None when the catalogue does not know the machine."""
    return tier_for_machine(
        device=point.device, device_name=point.device_name, fingerprint=point.fingerprint, tiers=tiers
    )


def override_tiers(points: list[OperatingPoint], tiers: dict[str, Tier], override: str | None) -> dict[str, Tier]:
    """--measured-on: the tier each result it can describe was measured on (result path -> tier). It may name a
    tier the catalogue failed to match (a CPU model name it does not list), for the results of the same kind,
    ISA level and vCPU count, or for GPU results any GPU tier unless the catalogue knows the GPU by name as
    another; others are matched by fingerprint. Refused when it describes none of them: their figures would be
    priced as another machine's."""
    if override is None:
        return {}
    check_measured_on(override, tiers)
    tier = tiers[override]
    problems = {point.path: _override_problem(point, tier, tiers) for point in points}
    if points and all(problems.values()):
        raise InputError(f"--measured-on {override}: {problems[points[0].path]}")
    others = [path for path, problem in problems.items() if problem]
    if others:
        warnings.warn(
            f"--measured-on {override}: not applied to {len(others)} result(s) of other hardware (matched by "
            f"fingerprint instead), e.g. {others[0]}",
            stacklevel=3,
        )
    return {path: tier for path, problem in problems.items() if problem is None}


def check_measured_on(override: str | None, tiers: Mapping[str, Tier]) -> None:
    """--measured-on names a tier of the catalogue (or of a tiers file)."""
    if override is not None and override not in tiers:
        raise InputError(f"--measured-on: unknown tier {override!r}; known tiers: {', '.join(tiers)}")


def _override_problem(point: OperatingPoint, tier: Tier, tiers: dict[str, Tier]) -> str | None:
    if Device.parse(point.device).is_cuda:
        if tier.kind != "gpu":
            return f"a {tier.kind} tier, but {point.path} was measured on a GPU"
        # A GPU the catalogue knows by name is one of its tiers (a tiers file may add another price for it).
        known = match_tier(point.device_name, tiers)
        if known is None or tier.matches(point.device_name) is not None:
            return None
        return (
            f"the tier of another GPU, but {point.path} was measured on {point.device_name}, which is "
            f"{known.name}; leave it out to match by name"
        )
    fingerprint = point.fingerprint
    if tier.kind == "cpu" and tier.isa == fingerprint.isa and tier.vcpus == fingerprint.logical_cores:
        return None
    what = f"a {tier.kind} tier" if tier.kind != "cpu" else f"a CPU tier for {tier.isa.upper()} with {tier.vcpus} vCPUs"
    return (
        f"{what}, but {point.path} was measured on {fingerprint.describe()}; leave it out to match by "
        "fingerprint, or price this machine with --price-per-hour"
    )


def measured_only_tier(point: OperatingPoint, price_per_hour: float | None) -> Tier:
    """A tier for a machine the catalogue does not know: its own measured figures, priced from --price-per-hour
    (or nothing), never another CPU's figures."""
    fingerprint = point.fingerprint
    gpu = Device.parse(point.device).is_cuda
    key = catalogue_key(point.dtype) or "fp32"
    return Tier(
        name=f"{MEASURED_ONLY_PREFIX}{point.machine}",
        kind="gpu" if gpu else "cpu",
        description=f"this machine, not in the catalogue: {fingerprint.describe()}",
        match=(),
        exclude=(),
        peak_flops=MappingProxyType({key: point.gemm_peak_flops_per_s}),
        memory_bytes=point.memory_need.total_bytes if gpu else fingerprint.memory_gib * 2**30,
        bandwidth_bytes_per_s=0.0,
        tdp_watts=0.0,
        devices_per_instance=1,
        vcpus=None if gpu else fingerprint.logical_cores,
        isa=None if gpu else fingerprint.isa,
        price_per_hour=price_per_hour,
        price_source="--price-per-hour" if price_per_hour is not None else None,
        price_date=None,
        owned=None,
        compute_efficiency=1.0,
        memory_efficiency=1.0,
        efficiency_source="measured-only: nothing is projected onto this tier",
        source="measured on this machine (its GEMM peak); the catalogue has no tier for its fingerprint",
        date=point.created_at[:10],
        unverified=frozenset(),
        notes=(
            "a measured-only tier: the catalogue knows no CPU of this fingerprint"
            + ("" if price_per_hour is not None else "; give --price-per-hour (or a tiers file) to cost it")
        ),
        origin="measured",
    )


def cost_table(
    points: list[OperatingPoint],
    tiers: dict[str, Tier],
    *,
    measured_on: str | None = None,
    price_per_hour: float | None = None,
) -> CostTable:
    """Every point on every tier: measured where it was measured (a measured-only tier for a machine the catalogue
    does not know), projected elsewhere, with the uncalibrated projection's error on the measured tier."""
    catalogue, tiers = dict(tiers), dict(tiers)
    named = override_tiers(points, catalogue, measured_on)
    home: dict[str, Tier] = {}
    for point in points:
        # Matched against the catalogue only: a measured-only tier belongs to its own machine, never to another.
        tier = named.get(point.path) or measured_tier(point, catalogue) or measured_only_tier(point, price_per_hour)
        home[point.path] = tiers.setdefault(tier.name, tier)
    if price_per_hour is not None and not any(t.name.startswith(MEASURED_ONLY_PREFIX) for t in home.values()):
        warnings.warn("--price-per-hour is not used: every result was measured on a catalogue tier", stacklevel=2)
    calibrations = _calibrations(points, home)
    overhead = _measured_launch_overhead(points, home)
    rows: list[TierCost] = []
    for point in points:
        for tier in tiers.values():
            if home[point.path] is tier:
                row = cost_on_tier(point, measured(point, tier), tier)
                if tier.name.startswith(MEASURED_ONLY_PREFIX):
                    row.notes.append(tier.notes)
                    rows.append(row)
                    continue
                uncalibrated = project(point, tier, default_efficiency(tier), dtype=point.dtype)
                if uncalibrated.batch_p50_s and row.timing.batch_p50_s:
                    row.projection_error = uncalibrated.batch_p50_s / row.timing.batch_p50_s - 1
            elif tier.name.startswith(MEASURED_ONLY_PREFIX):
                continue  # nothing is projected onto a machine the catalogue does not describe
            elif point.cpu_only and tier.kind == "gpu":
                row = cost_on_tier(point, cpu_only_timing(point, tier), tier)
            else:
                efficiency = efficiency_for(tier, point.model, calibrations)
                row = cost_on_tier(point, project(point, tier, efficiency, launch_overhead_us=overhead), tier)
                if overhead is not None and tier.kind == "gpu":
                    row.notes.append(f"launch overhead {overhead:.3g} us per operator, measured on a GPU result")
            rows.append(row)
    return CostTable(rows=rows, tiers=tiers, calibrations=calibrations, launch_overhead_us=overhead)


def cpu_only_timing(point: OperatingPoint, tier: Tier) -> TierTiming:
    """A lever that runs on a CPU only (int8_dynamic, prepack), on a GPU tier: no latency, and why."""
    timing = projected_shell(point, tier, target_dtype(point, tier))
    timing.notes.append(f"optimize {point.cpu_only} runs on a CPU only: not projected onto a GPU")
    return timing


def _calibrations(points: list[OperatingPoint], home: dict[str, Tier]) -> list[Calibration]:
    """Per (tier, model) and per tier: the median scale of the points measured there, in a fixed order. Points with
    a lever pulled (`optimize` or batching) calibrate only where no baseline point was measured: a lever changes the
    machine's efficiency, and adding one to a sweep must not move the baseline's projections."""
    scales: dict[tuple[str, str | None], list[tuple[str, float]]] = defaultdict(list)
    tiers: dict[str, Tier] = {}
    baseline_tiers = {home[p.path].name for p in points if p.levers == NO_LEVER}
    for point in points:
        if point.levers != NO_LEVER and home[point.path].name in baseline_tiers:
            continue
        tier = home[point.path]
        scale = calibration_scale(point, tier)
        if scale is None or tier.name.startswith(MEASURED_ONLY_PREFIX):
            continue
        tiers[tier.name] = tier
        scales[(tier.name, point.model)].append((point.path, scale))
        scales[(tier.name, None)].append((point.path, scale))
    calibrations = []
    for (name, model), found in sorted(scales.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        tier = tiers[name]
        scale = statistics.median(s for _, s in found)
        paths = tuple(sorted(p for p, _ in found))
        efficiency = Efficiency(
            compute=min(1.0, tier.compute_efficiency * scale),
            memory=min(1.0, tier.memory_efficiency * scale),
            source=f"calibrated: median of {len(paths)} point(s) measured on {name}"
            + (f" with {model}" if model else ""),
        )
        calibrations.append(
            Calibration(tier=name, kind=tier.kind, model=model, scale=scale, efficiency=efficiency, results=paths)
        )
    return calibrations


def efficiency_for(tier: Tier, model: str, calibrations: list[Calibration]) -> Efficiency:
    """The tier's own calibration for this model, else for any model; else the median scale of the measured
    tiers of its kind applied to its defaults; else the catalogue defaults."""
    own = {c.model: c for c in calibrations if c.tier == tier.name}
    if model in own:
        return own[model].efficiency
    if None in own:
        return own[None].efficiency
    same_kind = [c for c in calibrations if c.model is None and c.kind == tier.kind]
    if not same_kind:
        return default_efficiency(tier)
    scale = statistics.median(c.scale for c in same_kind)
    return Efficiency(
        compute=min(1.0, tier.compute_efficiency * scale),
        memory=min(1.0, tier.memory_efficiency * scale),
        source=f"default x {scale:.3g}, the median calibration of {', '.join(c.tier for c in same_kind)} (same kind)",
    )


def _measured_launch_overhead(points: list[OperatingPoint], home: dict[str, Tier]) -> float | None:
    """The median per-launch overhead GPU results show, replacing the catalogue's cited figure."""
    found = [
        overhead
        for p in points
        if not home[p.path].name.startswith(MEASURED_ONLY_PREFIX)  # no bandwidth figure to separate memory time
        and (overhead := measured_launch_overhead_us(p, home[p.path])) is not None
    ]
    return statistics.median(found) if found else None


def row_dict(row: TierCost) -> dict[str, Any]:
    """A flat, CSV-ready view of one row."""
    timing, point = row.timing, row.point
    return {
        "scenario": point.scenario,
        "point": point.point,
        "model": point.model,
        "engine": point.engine,
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
        "p99_basis": timing.p99_basis,
        "requests_per_s": row.requests_per_s,
        "recommendations_per_s": row.recommendations_per_s,
        "rented_usd_per_hour": row.rented_hourly_usd,
        "rented_cost_per_1m_recommendations_usd": row.rented_cost_per_1m_usd,
        "owned_usd_per_hour": row.owned_hourly_usd,
        "owned_cost_per_1m_recommendations_usd": row.owned_cost_per_1m_usd,
        "energy_j_per_recommendation": row.energy_j_per_recommendation,
        "energy_basis": row.energy_basis,
        "energy_kind": str(row.energy_kind) if row.energy_kind else None,
        "llm_bound": timing.llm_bound,
        "efficiency_source": timing.efficiency.source if timing.efficiency else None,
        "projection_error": row.projection_error,
        "notes": "; ".join(row.notes),
        "result": point.path,
    }


def calibration_dict(calibration: Calibration) -> dict[str, Any]:
    """A flat, CSV-ready view of one calibration: which results set which tier's efficiencies."""
    return {
        "tier": calibration.tier,
        "kind": calibration.kind,
        "model": calibration.model or "(all models)",
        "scale": calibration.scale,
        "compute_efficiency": calibration.efficiency.compute,
        "memory_efficiency": calibration.efficiency.memory,
        "results": " ".join(calibration.results),
    }
