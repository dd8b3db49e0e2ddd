"""Sweeps on a local Ray (`--executor ray`): the same points as the local executor, a worker killed mid-point
retried with no loss and no duplicate, a point failing in measurement reported while the other completes.
The `ray` group: `make test-ray` (CI runs it); skipped without the ray extra."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from bench.execution.jobs import JobOutcome, PointJob, run_job
from bench.results.reader import read_results
from bench.runner import run_scenarios
from tests.conftest import tiny_scenario_dict

ray = pytest.importorskip("ray")
from bench.execution.ray_executor import RayExecutor  # noqa: E402  (needs ray)

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parents[1]
MARKERS_ENV = "RECBENCH_TEST_MARKERS"


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """One Ray for the module: 2 CPUs, and 2 benchmark slots so both points of a sweep run at once (the tests
    judge structure, never speed). Workers import the tests package for the fault-injecting jobs."""
    markers = tmp_path_factory.mktemp("markers")
    ray.init(
        num_cpus=2,
        resources={"bench_slot": 2},
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), MARKERS_ENV: str(markers)}},
    )
    yield markers
    ray.shutdown()


def sweep(tmp_path: Path, **overrides: object) -> Path:
    spec = tiny_scenario_dict(name="ray", sweep={"batch_size": [1, 2]}, **overrides)
    path = tmp_path / "ray.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(path: Path, results: Path, executor: RayExecutor | None = None):
    return run_scenarios([path], results_dir=results, show_progress=False, executor=executor)


def by_spec(results: Path) -> dict:
    return {s.result.point.spec_hash: s.result for s in read_results([results])}


def test_a_sweep_on_ray_writes_the_same_points_as_the_local_executor(local_ray, tmp_path):
    scenario = sweep(tmp_path)
    run(scenario, tmp_path / "local")
    summary = run(scenario, tmp_path / "ray", RayExecutor())
    assert len(summary.written) == 2
    local, remote = by_spec(tmp_path / "local"), by_spec(tmp_path / "ray")
    assert set(local) == set(remote)
    for spec_hash, result in remote.items():
        twin = local[spec_hash]
        assert result.flops.counted.per_batch == twin.flops.counted.per_batch
        assert set(result.model_dump()) == set(twin.model_dump())  # the same sections
        assert result.execution is not None and result.execution.executor == "ray"
        assert result.execution.attempts == 1 and twin.execution is None
    # The workers' GEMM-peak cache comes back to the results folder, as a local run leaves it there.
    assert list((tmp_path / "ray").glob("*/calibration/gemm_peak__*.json"))
    # --resume on Ray submits nothing that is already measured.
    again = run_scenarios([scenario], results_dir=tmp_path / "ray", resume=True, show_progress=False,
                          executor=RayExecutor())  # fmt: skip
    assert again.written == [] and len(again.skipped) == 2


def crash_first_attempt(job: PointJob) -> JobOutcome:
    """Kill this worker process the first time it runs the batch-size-1 point (a node or worker dying)."""
    marker = Path(os.environ[MARKERS_ENV]) / f"{job.point.spec_hash}.crashed"
    if job.point.values["batch_size"] == 1 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


def test_a_worker_killed_mid_point_is_retried_with_no_loss_and_no_duplicate(local_ray, tmp_path):
    summary = run(sweep(tmp_path), tmp_path / "r", RayExecutor(job=crash_first_attempt, max_attempts=2))
    results = by_spec(tmp_path / "r")
    assert len(summary.written) == len(results) == 2
    attempts = {r.scenario.batch_size: r.execution.attempts for r in results.values() if r.execution}
    assert attempts == {1: 2, 2: 1}


def test_a_point_failing_in_measurement_is_reported_and_the_other_completes(local_ray, tmp_path):
    from bench.core.errors import InputError

    # A checkpoint path that does not exist is found by the worker that runs the point (not the driver).
    scenario = sweep(tmp_path)
    spec = yaml.safe_load(scenario.read_text())
    spec["sweep"] = {"model": [spec["model"], {"path": str(tmp_path / "no-such-checkpoint")}]}
    scenario.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(InputError) as info:
        run(scenario, tmp_path / "r", RayExecutor())
    message = str(info.value)
    assert "no-such-checkpoint" in message and "1 other point(s) written" in message
    assert len(read_results([tmp_path / "r"])) == 1
