"""Entry points from result files to costs and capacity plans (used by the CLI, the report and compare)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from bench.cost.capacity import CapacityPlan, PlanSettings, plan_capacity
from bench.cost.model import CostTable, check_measured_on, cost_table
from bench.cost.projection import OperatingPoint, operating_point
from bench.hardware.tiers import Tier
from bench.results.reader import StoredResult, read_newest, scenario_edit


def operating_points(stored: Sequence[StoredResult]) -> list[OperatingPoint]:
    return [operating_point(s) for s in stored]


def load_points(paths: Sequence[Path], *, strict: bool = False) -> list[OperatingPoint]:
    """The newest result of each point under `paths`, as the report takes them (a warning names what is left
    out): a plan printed to the terminal and the report written beside it agree."""
    used, older = read_newest(paths, strict=strict)
    if older:
        stale, newer = older[0]
        edit = scenario_edit(stale, newer)
        why = f"; its scenario differs ({edit}): give one of them another name to keep both" if edit else ""
        warnings.warn(
            f"{len(older)} older run(s) of points measured again are not used, e.g. {stale.path} (the newest, "
            f"{newer.path}, is{why})",
            stacklevel=2,
        )
    return operating_points(used)


def costs_for(
    paths: Sequence[Path],
    *,
    tiers: dict[str, Tier],
    measured_on: str | None = None,
    price_per_hour: float | None = None,
    strict: bool = False,
) -> CostTable:
    check_measured_on(measured_on, tiers)  # before reading any result
    points = load_points(paths, strict=strict)
    return cost_table(points, tiers, measured_on=measured_on, price_per_hour=price_per_hour)


def capacity_plans(
    paths: Sequence[Path],
    *,
    tiers: dict[str, Tier],
    settings: PlanSettings,
    measured_on: str | None = None,
    price_per_hour: float | None = None,
    strict: bool = False,
) -> list[CapacityPlan]:
    table = costs_for(paths, tiers=tiers, measured_on=measured_on, price_per_hour=price_per_hour, strict=strict)
    return plan_capacity(table.rows, settings)
