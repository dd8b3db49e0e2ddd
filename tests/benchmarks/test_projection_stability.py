"""Two runs of the same quickstart must project every GPU tier within 10% of each other: projections rest on
medians, and host work is carried by its median, so one noisy run cannot swing a GPU figure. A timing check:
in the benchmark_run group, not the default suite (run with `make bench`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.cost.api import costs_for
from bench.hardware.tiers import load_tiers

pytestmark = pytest.mark.benchmark_run
QUICKSTART = Path(__file__).parents[2] / "scenarios" / "quickstart.yaml"


def test_two_quickstart_runs_project_every_gpu_tier_within_10_percent(tmp_path: Path) -> None:
    tiers = load_tiers()
    projected = []
    for run in ("a", "b"):
        assert main(["run", str(QUICKSTART), "--results-dir", str(tmp_path / run), "--no-progress"]) == 0
        table = costs_for([tmp_path / run], tiers=tiers)
        projected.append(
            {r.timing.tier: r.timing.batch_p50_s for r in table.rows if tiers[r.timing.tier].kind == "gpu"}
        )
    first, second = projected
    spread = {tier: second[tier] / first[tier] - 1 for tier in first}
    print("\n" + "\n".join(f"{tier}: {first[tier] * 1e3:.2f} ms vs {second[tier] * 1e3:.2f} ms ({change:+.1%})"
                           for tier, change in spread.items()))  # fmt: skip
    assert all(abs(change) <= 0.10 for change in spread.values()), spread
