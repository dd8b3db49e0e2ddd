"""Entry points from result files to costs and capacity plans (used by the CLI and the report)."""

from __future__ import annotations

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
    if qps <= 0 or slo_p99_ms <= 0 or not 0 < hours_per_day <= 24 or headroom < 0:
        raise InputError("--qps and --slo-p99-ms must be positive, --hours-per-day in (0, 24], --headroom >= 0")
    rows = costs_for(paths, tiers=tiers, measured_on=measured_on)
    return plan_capacity(rows, qps=qps, slo_p99_ms=slo_p99_ms, hours_per_day=hours_per_day, headroom=headroom)
