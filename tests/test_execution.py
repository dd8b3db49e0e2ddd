"""Where a cluster point runs: the Ray resources it asks for, checked against a stand-in cluster (no Ray needed)."""

from __future__ import annotations

from pathlib import Path

from bench.execution.jobs import PointJob
from bench.execution.ray_executor import RayExecutor
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario
from tests.conftest import tiny_scenario_dict


class StandInCluster:
    def __init__(self, resources: dict[str, float], node_cpus: list[int]) -> None:
        self.resources, self.node_cpus = resources, node_cpus

    def cluster_resources(self) -> dict[str, float]:
        return self.resources

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": n}} for n in self.node_cpus] + [{"Alive": False, "Resources": {}}]


def executor_on(cluster: StandInCluster) -> RayExecutor:
    executor = RayExecutor.__new__(RayExecutor)  # no ray.init: only the placement rule is under test
    executor.ray, executor.slot_resource = cluster, "bench_slot"
    return executor


def job(**overrides: object) -> PointJob:
    scenario = Scenario.model_validate(tiny_scenario_dict(**overrides))
    return PointJob(point=ScenarioPoint(scenario=scenario, source_file=Path("s.yaml"), index=0, values={}), tiers={})


def test_a_cpu_point_takes_a_benchmark_slot_or_a_whole_node():
    with_slots = executor_on(StandInCluster({"CPU": 48, "bench_slot": 3}, [16, 32]))
    assert with_slots._placement(job()) == {"resources": {"bench_slot": 1}, "num_cpus": 0}
    without = executor_on(StandInCluster({"CPU": 48}, [16, 32]))
    assert without._placement(job()) == {"num_cpus": 16}  # the smallest node, so no two points share one


def test_a_cuda_point_takes_a_gpu_of_the_type_it_names_or_is_refused():
    cluster = StandInCluster({"CPU": 16, "GPU": 2, "accelerator_type:H100": 1}, [16])
    assert executor_on(cluster)._placement(job(device="cuda")) == {"num_gpus": 1, "num_cpus": 1}
    assert executor_on(cluster)._placement(job(device="cuda", accelerator_type="H100")) == {
        "num_gpus": 1, "num_cpus": 1, "accelerator_type": "H100"}  # fmt: skip
    refused = executor_on(cluster)._placement(job(device="cuda", accelerator_type="A100"))
    assert isinstance(refused, str) and "accelerator_type A100: no such GPU" in refused
    no_gpu = executor_on(StandInCluster({"CPU": 16}, [16]))._placement(job(device="cuda"))
    assert isinstance(no_gpu, str) and "has no GPU" in no_gpu


def test_a_job_frees_its_model_though_the_objects_imported_before_it_are_frozen(monkeypatch):
    import gc
    import weakref

    from bench.execution.jobs import run_job
    from bench.measurement import prepare

    built: list[weakref.ref] = []

    def build_and_watch(*args, **kwargs):
        loaded = real_build(*args, **kwargs)
        built.append(weakref.ref(loaded.model))
        return loaded

    real_build = prepare.build_random_model
    monkeypatch.setattr(prepare, "build_random_model", build_and_watch)
    outcome = run_job(job())
    assert outcome.error is None and outcome.result is not None
    assert gc.get_freeze_count() > 0  # imported libraries are out of the collector's view from the first point on
    assert (outcome.result.environment.gc_frozen_objects or 0) > 0  # and the result says so
    assert len(built) == 1 and built[0]() is None  # but the point's own model is collected once it is done


def test_a_worker_starts_from_the_drivers_gemm_peak_and_hands_back_its_cache(tmp_path):
    import dataclasses
    import json

    from bench.execution.jobs import keep_calibration, pack_calibration, run_job
    from bench.hardware.environment import machine_slug

    # The driver's results folder holds a (deliberately unbeatable) figure for this machine, and one for another.
    driver = tmp_path / "results"
    ours = driver / machine_slug() / "calibration"
    ours.mkdir(parents=True)
    (driver / "other-machine" / "calibration").mkdir(parents=True)
    outcome = run_job(job())
    (name, measured), *_ = [(k, v) for k, v in outcome.calibration.items() if k.startswith(machine_slug() + "/")]
    best = {**json.loads(measured), "flops_per_s": 1e18}
    (driver / name).write_text(json.dumps(best))
    (driver / "other-machine" / "calibration" / "gemm_peak__x.json").write_text(json.dumps(best))

    shipped = pack_calibration(driver)
    assert set(shipped) == {name, "other-machine/calibration/gemm_peak__x.json"}
    seeded = run_job(dataclasses.replace(job(), calibration=shipped))
    assert seeded.result is not None and seeded.result.peak.gemm.flops_per_s == 1e18  # the cached best is used

    # Back on the driver: a worker's cache replaces the driver's only where it is better.
    machine = machine_slug()
    keep_calibration({name: measured}, driver, machine=machine)
    assert json.loads((driver / name).read_text())["flops_per_s"] == 1e18
    (driver / name).unlink()
    keep_calibration({name: measured, "x/calibration/not-a-cache.txt": b"x"}, driver, machine=machine)
    assert (driver / name).read_bytes() == measured and not (driver / "x").exists()
    # Only files of the machine the result came from, by name inside its folder, holding a real measurement.
    (driver / name).unlink()
    file = name.split("/")[-1]
    hostile = {
        f"../calibration/{file}": measured,
        f"/calibration/{file}": measured,
        f"other-machine/calibration/{file}": measured,
    }
    for figure in (float("nan"), float("inf"), "fast", -1.0, True):
        tampered = json.dumps({**json.loads(measured), "flops_per_s": figure}).encode()
        keep_calibration({name: tampered}, driver, machine=machine)
    keep_calibration(hostile, driver, machine=machine)
    assert not (driver / name).exists() and not (tmp_path / "calibration").exists()
    assert not (driver / "calibration").exists() and not (driver / "other-machine" / "calibration" / file).exists()
