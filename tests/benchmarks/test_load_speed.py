"""Load-test figures for scenarios/quickstart.yaml's model on this machine (run with `make bench`; slow).

Prints: the offline throughput against plain isolated-batch throughput at the same batch size, and the peak
server QPS whose LoadGen run is VALID under a 500 ms p99 bound. Run with pytest -s to see the figures.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from bench.measurement.point import run_point
from bench.scenarios.loader import expand_points

pytestmark = pytest.mark.benchmark_run
REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scenarios" / "quickstart.yaml"
P99_SLO_MS = 500.0


def quickstart_point(tmp_path: Path, name: str, load: dict | None):
    data = yaml.safe_load(QUICKSTART.read_text())
    data["name"] = name
    if load is not None:
        data["load"] = load
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return expand_points(path)[0]


@pytest.fixture(scope="module")
def figures() -> dict:
    return {}


def test_offline_throughput_vs_batch_throughput(tmp_path: Path, figures: dict) -> None:
    machine_dir = tmp_path / "results" / "bench"
    plain = run_point(quickstart_point(tmp_path, "qs-batch", None), machine_dir=machine_dir)
    batch_size = plain.scenario.batch_size
    batch_qps = plain.summary.throughput.requests_per_s
    offline = run_point(
        quickstart_point(
            tmp_path,
            "qs-offline",
            {"mode": "offline", "max_batch_size": batch_size, "min_duration_s": 10, "max_wall_s": 60},
        ),
        machine_dir=machine_dir,
    )
    load = offline.load
    assert load is not None and load.completed_samples_per_s is not None
    offline_qps = load.completed_samples_per_s
    figures["batch_qps"] = batch_qps
    print(
        f"\nquickstart batch_size {batch_size}: isolated batches {batch_qps:.1f} req/s (batch / median latency); "
        f"LoadGen offline {offline_qps:.1f} samples/s ({load.loadgen_validity}, served {load.served} in "
        f"{load.wall_s:.1f} s, mean batch {load.batch_size_mean:.2f}); ratio {offline_qps / batch_qps:.2f}"
    )
    assert load.loadgen_validity == "VALID", load.invalid_reason
    assert 0.5 * batch_qps < offline_qps < 1.5 * batch_qps


def test_peak_server_qps_under_500ms_p99(tmp_path: Path, figures: dict) -> None:
    capacity = figures.get("batch_qps") or 40.0
    low, high = 0.3 * capacity, 0.9 * capacity  # under load, a Python batcher sustains well below isolated batches
    min_duration = math.ceil(470 / low)  # >= 459 queries at the lowest probe
    point = quickstart_point(
        tmp_path,
        "qs-peak",
        {
            "mode": "server",
            "qps_range": [round(low, 1), round(high, 1)],
            "peak_tolerance": 0.1,
            "p99_slo_ms": P99_SLO_MS,
            "min_duration_s": min_duration,
            "max_batch_size": 8,
            "max_wait_ms": 20,
            "max_outstanding": 256,
            "max_wall_s": min_duration + 20,
        },
    )
    load = run_point(point, machine_dir=tmp_path / "results" / "bench").load
    assert load is not None and load.probes is not None
    print(f"\nquickstart peak search over [{low:.1f}, {high:.1f}] QPS, p99 bound {P99_SLO_MS:.0f} ms:")
    for probe in load.probes:
        p99 = f"{probe.p99_s * 1000:.0f} ms" if probe.p99_s is not None else "n/a"
        print(f"  {probe.qps:7.1f} QPS  {probe.verdict:7s}  p99 {p99}  dropped {probe.dropped}")
    print(f"  peak {load.peak_qps} QPS (bracket {load.peak_bracket})")
    assert load.peak_qps is not None
