"""EnergyTracker on fake RAPL sysfs trees and a fake NVML module, plus the modelled fallback on this CPU."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.trackers import energy
from bench.trackers.energy import EnergyResult, EnergyTracker, _PowerLog, _RaplDomain, co2_grams

CPU = torch.device("cpu")
CUDA0 = torch.device("cuda", 0)
TDP = 100.0  # test value only; real TDPs come from the hardware data file


@pytest.fixture(autouse=True)
def _no_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# ----------------------------------------------------------------- fake RAPL sysfs


def _zone(root: Path, zone: str, name: str, energy_uj: int, max_range: int = 10**12) -> Path:
    path = root / zone
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


@pytest.fixture
def rapl_root(tmp_path: Path) -> Path:
    """Two packages plus a "core" subzone listed beside them, as /sys/class/powercap does."""
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", 1_000_000)
    _zone(root, "intel-rapl:1", "package-1", 5_000_000)
    _zone(root, "intel-rapl:0:0", "core", 7_000_000)
    return root


def _set(root: Path, zone: str, energy_uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{energy_uj}\n")


def test_rapl_sums_package_domains_only(rapl_root: Path) -> None:
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=rapl_root) as tracker:
        _set(rapl_root, "intel-rapl:0", 3_000_000)  # +2 J
        _set(rapl_root, "intel-rapl:1", 5_500_000)  # +0.5 J
        _set(rapl_root, "intel-rapl:0:0", 99_000_000)  # core: inside package-0 already, must be ignored
    result = tracker.result()
    assert isinstance(result, EnergyResult)
    assert (result.method, result.estimated, result.unit) == ("rapl", False, "J")
    assert result.joules == pytest.approx(2.5)
    assert result.average_watts == pytest.approx(2.5 / result.duration_s)
    assert {r["domain"] for r in result.readings} == {"intel-rapl:0", "intel-rapl:1"}
    start = {r["domain"]: r["energy_uj"] for r in result.readings[:2]}
    end = {r["domain"]: r["energy_uj"] for r in result.readings[2:]}
    assert start == {"intel-rapl:0": 1_000_000, "intel-rapl:1": 5_000_000}
    assert end == {"intel-rapl:0": 3_000_000, "intel-rapl:1": 5_500_000}


def test_rapl_wraparound_uses_max_energy_range(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", 900, max_range=1_000)
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=root) as tracker:
        _set(root, "intel-rapl:0", 100)  # wrapped: 900 -> 1000 -> 0 -> 100
    result = tracker.result()
    assert result.method == "rapl"
    assert result.joules == pytest.approx((100 + 1_000 - 900) / 1e6)
    assert any("wrapped 1 time" in note for note in result.notes)


def test_rapl_domain_accumulates_several_wraps() -> None:
    # A long window polled during its life can wrap more than once; each poll corrects its own step.
    domain = _RaplDomain(zone=Path("intel-rapl:0"), name="package-0", max_range_uj=1_000, start_uj=900, last_uj=900)
    for reading in (100, 800, 200, 300):
        domain.advance(reading)
    assert (domain.total_uj, domain.wraps) == (200 + 700 + 400 + 100, 2)


def test_rapl_unreadable_directory_falls_back_to_modelled_with_note(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    zone = _zone(root, "intel-rapl:0", "package-0", 1)
    (zone / "energy_uj").unlink()
    (zone / "energy_uj").mkdir()  # reading it raises IsADirectoryError, an OSError, even as root
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=root) as tracker:
        pass
    result = tracker.result()
    assert (result.method, result.estimated) == ("modelled", True)
    assert result.joules is not None and result.joules > 0
    assert f"RAPL present but unreadable: {zone / 'energy_uj'}: Is a directory" in result.notes


def test_rapl_permission_error_is_reported_not_zero(rapl_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(energy, "_read_int", denied)
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=rapl_root) as tracker:
        pass
    result = tracker.result()
    assert result.method == "modelled"
    assert any(n.startswith("RAPL present but unreadable:") and "Permission denied" in n for n in result.notes)


def test_rapl_failing_at_exit_falls_back_to_modelled(rapl_root: Path) -> None:
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=rapl_root) as tracker:
        (rapl_root / "intel-rapl:1" / "energy_uj").write_text("garbage\n")
    result = tracker.result()
    assert result.method == "modelled"
    assert any("intel-rapl:1/energy_uj: not an integer" in note for note in result.notes)


# ----------------------------------------------------------------- modelled


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_modelled_on_this_cpu_follows_the_linear_model(tmp_path: Path) -> None:
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=tmp_path / "absent") as tracker:
        _busy(0.2)
    result = tracker.result()
    assert (result.method, result.estimated) == ("modelled", True)
    (reading,) = result.readings
    assert reading["tdp_watts"] == TDP and reading["idle_fraction"] == 0.3
    assert 0 < reading["utilisation"] <= 1
    expected_u = min(1.0, reading["cpu_time_s"] / (reading["wall_s"] * reading["logical_cores"]))
    assert reading["utilisation"] == pytest.approx(expected_u)
    expected = TDP * (0.3 + 0.7 * reading["utilisation"]) * reading["wall_s"]
    assert result.joules == pytest.approx(expected)
    assert result.duration_s == reading["wall_s"] >= 0.2
    assert any("RAPL not present" in note for note in result.notes)


def test_modelled_utilisation_is_of_the_cores_a_cpu_quota_allows(tmp_path: Path, monkeypatch) -> None:
    from bench.hardware import environment

    monkeypatch.setattr(environment, "cgroup_cpu_quota", lambda: 0.5)  # docker --cpus=0.5: one usable core
    with EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=tmp_path / "absent") as tracker:
        _busy(0.05)
    (reading,) = tracker.result().readings
    assert reading["logical_cores"] == 1


def test_modelled_without_tdp_is_unavailable(tmp_path: Path) -> None:
    with EnergyTracker(CPU, modelled_tdp_watts=None, rapl_root=tmp_path / "absent") as tracker:
        pass
    result = tracker.result()
    assert (result.method, result.joules, result.average_watts, result.estimated) == ("unavailable", None, None, False)
    assert result.notes


def test_result_before_exit_raises(tmp_path: Path) -> None:
    tracker = EnergyTracker(CPU, modelled_tdp_watts=TDP, rapl_root=tmp_path)
    with pytest.raises(RuntimeError):
        tracker.result()


# ----------------------------------------------------------------- fake NVML


class FakeNvml:
    """Just the pynvml surface the tracker uses."""

    class NVMLError(Exception):
        pass

    def __init__(self, *, step_mj: int = 1000, counter: bool = True, power_mw: int = 150_000) -> None:
        self.step_mj = step_mj
        self.counter = counter
        self.power_mw = power_mw
        self.energy_mj = 10_000_000
        self.init_calls = 0
        self.handle_indices: list[int] = []

    def nvmlInit(self) -> None:
        self.init_calls += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        self.handle_indices.append(index)
        return ("handle", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        if not self.counter:
            raise self.NVMLError("Not Supported")
        self.energy_mj += self.step_mj
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        return self.power_mw


def test_nvml_energy_counter_difference() -> None:
    nvml = FakeNvml(step_mj=1234)
    with EnergyTracker(CUDA0, modelled_tdp_watts=None, nvml=nvml) as tracker:
        pass
    result = tracker.result()
    assert (result.method, result.estimated) == ("nvml_energy_counter", False)
    counter = [r["energy_mj"] for r in result.readings if "energy_mj" in r]
    assert len(counter) == 2
    assert result.joules == pytest.approx((counter[1] - counter[0]) / 1000) == pytest.approx(1.234)
    assert nvml.init_calls == 1 and nvml.handle_indices == [0]


def test_nvml_init_happens_once_per_module() -> None:
    nvml = FakeNvml()
    EnergyTracker("cuda:0", modelled_tdp_watts=None, nvml=nvml)
    EnergyTracker("cuda:0", modelled_tdp_watts=None, nvml=nvml)
    assert nvml.init_calls == 1


def test_nvml_without_counter_integrates_power() -> None:
    nvml = FakeNvml(counter=False, power_mw=150_000)
    with EnergyTracker(CUDA0, modelled_tdp_watts=None, nvml=nvml, sample_interval_s=0.02) as tracker:
        time.sleep(0.3)
    result = tracker.result()
    assert (result.method, result.estimated) == ("nvml_power_sampling", False)
    assert result.joules == pytest.approx(150 * result.duration_s, rel=1e-3)  # samples start just after t0
    assert result.joules == pytest.approx(45, rel=0.35)
    assert result.average_watts == pytest.approx(150, rel=1e-3)
    power = [r for r in result.readings if "power_mw" in r]
    assert len(power) >= 3 and all(r["power_mw"] == 150_000 for r in power)
    assert any("energy counter unavailable" in note for note in result.notes)


def test_nvml_counter_that_did_not_advance_uses_power_times_time() -> None:
    nvml = FakeNvml(step_mj=0, power_mw=80_000)
    with EnergyTracker(CUDA0, modelled_tdp_watts=None, nvml=nvml) as tracker:
        pass  # far shorter than NVML's ~0.1 s counter update period
    result = tracker.result()
    assert result.method == "nvml_power_sampling"
    assert result.joules is not None and result.joules > 0
    assert result.joules == pytest.approx(80 * result.duration_s, rel=0.05)
    assert any("did not advance" in note for note in result.notes)


def test_nvml_import_failure_falls_back_to_modelled() -> None:
    class Broken(FakeNvml):
        def nvmlInit(self) -> None:
            raise self.NVMLError("Driver Not Loaded")

    with EnergyTracker(CUDA0, modelled_tdp_watts=TDP, nvml=Broken()) as tracker:
        pass
    result = tracker.result()
    assert (result.method, result.estimated) == ("modelled", True)
    assert any(note.startswith("NVML unavailable:") for note in result.notes)


def test_nvml_index_follows_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    nvml = FakeNvml()
    with EnergyTracker("cuda:1", modelled_tdp_watts=None, nvml=nvml) as tracker:
        pass
    assert nvml.handle_indices == [5]
    assert any("NVML device 5" in note for note in tracker.result().notes)


# ----------------------------------------------------------------- helpers


def test_power_log_thins_points_but_integrates_every_sample() -> None:
    log = _PowerLog(max_points=10)
    for i in range(101):
        log.add(float(i), 1000.0 if i % 2 else 3000.0, keep=i == 100)
    assert len(log.points) <= 11 and log.points[-1]["t"] == 100.0
    assert log.millijoules == pytest.approx(2000.0 * 100)  # each 1 s trapezoid averages 1000 and 3000 mW
    assert log.stride > 1 and all(p["t"] % log.stride == 0 for p in log.points[:-1])  # last: the closing sample


def test_co2_grams() -> None:
    assert co2_grams(3.6e6, 400.0) == pytest.approx(400.0)
    assert co2_grams(1800.0, 200.0) == pytest.approx(0.1)
    assert co2_grams(0.0, 500.0) == 0.0
