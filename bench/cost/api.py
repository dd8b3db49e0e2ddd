"""Entry points from result files to costs and capacity plans (used by the CLI and the report)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.cost.capacity import CapacityPlan, plan_capacity
from bench.cost.model import TierCost, cost_table
from bench.cost.projection import OperatingPoint, operating_point
from bench.errors import InputError
from bench.hardware.tiers import Tier
from bench.results.store import iter_result_paths, load_result


def load_points(paths: Sequence[Path]) -> list[OperatingPoint]:
    points = []
    for path in iter_result_paths(paths):
        try:
            points.append(operating_point(load_result(path), path))
        except (KeyError, TypeError) as exc:
            raise InputError(f"{path}: incomplete recbench result (missing {exc})") from None
    if not points:
        raise InputError(f"{' '.join(map(str, paths))}: no result files found")
    return points


def costs_for(paths: Sequence[Path], *, tiers: dict[str, Tier], measured_on: str | None = None) -> list[TierCost]:
    return cost_table(load_points(paths), tiers, measured_on=measured_on)


def capacity_plans(
    paths: Sequence[Path],
    *,
    tiers: dict[str, Tier],
    qps: float,
    slo_p99_ms: float,
    hours_per_day: float = 24.0,
    headroom: float = 0.2,
    measured_on: str | None = None,
) -> list[CapacityPlan]:
    checks = [
        ("--qps", qps, qps > 0, "a finite number > 0"),
        ("--slo-p99-ms", slo_p99_ms, slo_p99_ms > 0, "a finite number > 0"),
        ("--hours-per-day", hours_per_day, 0 < hours_per_day <= 24, "in (0, 24]"),
        ("--headroom", headroom, headroom >= 0, "a finite number >= 0"),
    ]
    for flag, value, ok, expected in checks:
        if not (math.isfinite(value) and ok):
            raise InputError(f"{flag}: must be {expected}, got {value}")
    rows = costs_for(paths, tiers=tiers, measured_on=measured_on)
    return plan_capacity(rows, qps=qps, slo_p99_ms=slo_p99_ms, hours_per_day=hours_per_day, headroom=headroom)
