"""Energy tracker: joules over one window, measured from NVML or RAPL where the machine offers them, else modelled.

Usage::

    with EnergyTracker(device, modelled_tdp_watts=cpu_spec.tdp_watts) as energy:
        run_workload()
    result = energy.result()  # joules, the method used, raw readings in their native units

Methods, best first (the one used is recorded in ``EnergyResult.method``):

* CUDA device: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since driver load,
  Volta and newer), differenced over the window. Where it is unsupported, NVML power
  (``nvmlDeviceGetPowerUsage``, mW) is sampled on a thread and integrated with the trapezoid rule.
* CPU device: the RAPL package counters (``energy_uj``, µJ) from the powercap sysfs tree, differenced per package.
* Otherwise: a modelled estimate from the TDP the caller passes in (``estimated=True``), see ``EnergyTracker``.

Measured sources cover the whole device: every process on that GPU, or on those CPU packages, is included.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import torch

from bench.hardware.environment import usable_cores

JOULES_PER_KWH = 3.6e6

# Retained power samples are capped (0.05 s × 5000 ≈ 4 minutes before thinning starts) so long runs stay small.
MAX_POWER_SAMPLES = 5000

# NVML refreshes its energy counter and power reading at roughly 10 Hz; a shorter window may see no counter step.
NVML_UPDATE_PERIOD_S = 0.1

# RAPL counters are polled during the window only to catch wraparounds, which take minutes even at full load
# (a 262 kJ range at 200 W wraps after ~22 min), so 1 Hz is plenty and stays out of the workload's way.
RAPL_POLL_INTERVAL_S = 1.0

# Modules on which nvmlInit has been called, kept alive so identity checks stay valid (nvmlInit is
# reference-counted, so calling it per tracker without a matching shutdown would only pile up references).
_nvml_initialised: list[Any] = []
_nvml_lock = threading.Lock()


@dataclass(kw_only=True)
class EnergyResult:
    """Energy over one tracked window, with the raw readings it was derived from."""

    # "nvml_energy_counter" | "nvml_power_sampling" | "rapl" | "modelled" | "unavailable"
    method: str
    estimated: bool  # True only for "modelled": the joules come from a power model, not a meter
    joules: float | None  # None only for "unavailable"
    duration_s: float  # wall-clock length of the window
    average_watts: float | None  # joules / duration_s
    # Raw readings, relative time "t" in seconds from the window's start:
    #   NVML counter {"t", "energy_mj"}; NVML power {"t", "power_mw"} (every stride-th raw sample on long windows);
    #   RAPL {"t", "domain", "name", "energy_uj", "max_energy_range_uj"} per package at start and end;
    #   modelled/unavailable {"cpu_time_s", "wall_s", "logical_cores", "utilisation", "tdp_watts", "idle_fraction"}.
    readings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a method was chosen or fell back, and caveats
    unit: str = "J"


def co2_grams(joules: float, grid_g_per_kwh: float) -> float:
    """Grams of CO2-equivalent for `joules` at a grid carbon intensity in gCO2e/kWh (1 kWh = 3.6e6 J)."""
    return joules / JOULES_PER_KWH * grid_g_per_kwh


class _PowerLog:
    """Power samples integrated as they arrive, with the retained samples thinned for long windows.

    The trapezoid integral is accumulated over every raw sample, so thinning never changes the energy;
    retained points are genuine raw samples (every `stride`-th), not averages.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self.points: list[dict[str, float]] = []
        self.stride = 1
        self.n_raw = 0
        self.millijoules = 0.0
        self.first_t: float | None = None
        self._last: tuple[float, float] | None = None

    def add(self, t: float, power_mw: float, *, keep: bool = False) -> None:
        if self.first_t is None:
            self.first_t = t
        if self._last is not None:
            t_prev, p_prev = self._last
            self.millijoules += (p_prev + power_mw) / 2.0 * (t - t_prev)  # trapezoid rule; mW × s = mJ
        self._last = (t, power_mw)
        if keep or self.n_raw % self.stride == 0:
            self.points.append({"t": t, "power_mw": power_mw})
        self.n_raw += 1
        # `keep` marks the closing sample, which must survive, so thinning happens only before it.
        if not keep and len(self.points) > self.max_points:
            self.points = self.points[::2]  # kept points sit at multiples of stride, so these sit at 2 × stride
            self.stride *= 2

    @property
    def last_mw(self) -> float | None:
        return None if self._last is None else self._last[1]

    @property
    def span_s(self) -> float:
        """Seconds from the first sample to the last."""
        return 0.0 if self.first_t is None or self._last is None else self._last[0] - self.first_t


@dataclass(kw_only=True)
class _RaplDomain:
    """One RAPL package zone, accumulating wrap-corrected energy between reads."""

    zone: Path
    name: str
    max_range_uj: int | None
    start_uj: int
    last_uj: int
    total_uj: int = 0
    wraps: int = 0

    def advance(self, now_uj: int) -> None:
        delta = now_uj - self.last_uj
        if delta < 0:
            if self.max_range_uj is None:
                raise _RaplUnreadable(self.zone / "max_energy_range_uj", "counter wrapped but the range is unknown")
            # energy_uj counts up to max_energy_range_uj and restarts at 0 (Linux powercap sysfs ABI).
            delta += self.max_range_uj
            self.wraps += 1
        self.total_uj += delta
        self.last_uj = now_uj


class _RaplUnreadable(Exception):
    """A RAPL file exists but cannot be read (root-only since CVE-2020-8694, or malformed)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"RAPL present but unreadable: {path}: {reason}")


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def _read_rapl_int(path: Path) -> int:
    try:
        return _read_int(path)
    except OSError as exc:
        raise _RaplUnreadable(path, exc.strerror or str(exc)) from exc
    except ValueError as exc:
        raise _RaplUnreadable(path, f"not an integer ({exc})") from exc


def _rapl_package_zones(root: Path) -> list[tuple[Path, str]]:
    """Package-level RAPL zones under `root` as (zone directory, name), e.g. (intel-rapl:0, "package-0").

    sysfs lists subzones (intel-rapl:0:0 "core", "uncore", "dram") beside their packages; core and uncore energy
    is already inside the package's, so only zones named "package*" are summed. Top-level "psys" (platform) zones
    are excluded for the same reason. The glob skips intel-rapl-mmio:*, which repeats package-0 on some Intel
    parts; AMD's driver exposes the same intel-rapl tree.
    """
    zones = []
    for zone in root.glob("intel-rapl:*"):
        if not zone.is_dir():
            continue
        name_file = zone / "name"
        try:
            name = name_file.read_text().strip()
        except OSError as exc:
            raise _RaplUnreadable(name_file, exc.strerror or str(exc)) from exc
        if name.startswith("package"):
            zones.append((zone, name))
    return sorted(zones, key=lambda zone_name: zone_name[0].name)


def _init_nvml(nvml: Any | None) -> Any:
    """The NVML module (pynvml from nvidia-ml-py unless one is passed in), nvmlInit-ed once per process."""
    module = nvml if nvml is not None else importlib.import_module("pynvml")
    with _nvml_lock:
        if not any(m is module for m in _nvml_initialised):
            module.nvmlInit()
            _nvml_initialised.append(module)
    return module


def _nvml_handle(nvml: Any, torch_index: int) -> tuple[Any, str | None]:
    """NVML handle for torch's cuda:<torch_index>, plus a note when CUDA_VISIBLE_DEVICES remapped it.

    NVML ignores CUDA_VISIBLE_DEVICES and numbers every GPU, so torch's index is translated through it. Not handled:
    CUDA_DEVICE_ORDER=FASTEST_FIRST (CUDA's default) can order mixed GPU models differently from NVML's PCI order.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = [entry.strip() for entry in visible.split(",")] if visible else []
    if torch_index < len(entries):
        entry = entries[torch_index]
        if entry.isdigit():
            handle = nvml.nvmlDeviceGetHandleByIndex(int(entry))
        else:  # GPU-<uuid> / MIG-<uuid> entries
            handle = nvml.nvmlDeviceGetHandleByUUID(entry)
        return handle, f"cuda:{torch_index} is NVML device {entry} (CUDA_VISIBLE_DEVICES={visible})"
    return nvml.nvmlDeviceGetHandleByIndex(torch_index), None


def _cuda_sync(device: torch.device) -> None:
    # Kernels run asynchronously: wait so the window holds exactly its own GPU work. Without an initialised CUDA
    # context there is nothing queued, and checking that does not create one (tests use fake NVML on CPU builds).
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.synchronize(device)


class EnergyTracker:
    """Context manager measuring (or, failing that, estimating) the energy used over its window.

    Measured methods are tried in the order given in the module docstring. When none is usable the energy is
    modelled and labelled ``estimated=True``, with the linear utilisation power model (Cloud Carbon Footprint
    methodology; codecarbon's CPU fallback has the same idle-to-TDP shape)::

        average_watts = min_watts + utilisation × (max_watts - min_watts)
                      = tdp × (idle_fraction + (1 - idle_fraction) × utilisation)
        joules        = average_watts × duration_s
        utilisation   = min(1, process CPU time (user + system) / (duration_s × logical cores visible to us))

    with max_watts = TDP and min_watts = idle_fraction × TDP. The TDP comes from the caller (a hardware data
    file), never from here; without one the method is "unavailable" and joules None. On a CUDA device without
    NVML the same CPU-time utilisation is used, which is only a proxy for GPU load (a note says so).
    """

    def __init__(
        self,
        device: torch.device | str,
        *,
        modelled_tdp_watts: float | None,
        modelled_idle_fraction: float = 0.3,
        rapl_root: Path = Path("/sys/class/powercap"),
        nvml: Any | None = None,
        sample_interval_s: float = 0.05,
    ) -> None:
        if sample_interval_s <= 0:
            raise ValueError(f"EnergyTracker: sample_interval_s must be positive, got {sample_interval_s}")
        if not 0.0 <= modelled_idle_fraction <= 1.0:
            raise ValueError(f"EnergyTracker: modelled_idle_fraction must be in [0, 1], got {modelled_idle_fraction}")
        if modelled_tdp_watts is not None and modelled_tdp_watts <= 0:
            raise ValueError(f"EnergyTracker: modelled_tdp_watts must be positive, got {modelled_tdp_watts}")
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        self.modelled_tdp_watts = modelled_tdp_watts
        self.modelled_idle_fraction = modelled_idle_fraction
        self.rapl_root = Path(rapl_root)
        self.sample_interval_s = sample_interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._result: EnergyResult | None = None
        self._sampler_error: BaseException | None = None
        # NVML is opened once per tracker; failures become notes on every window and the modelled fallback.
        self._nvml: Any | None = None
        self._nvml_handle: Any | None = None
        self._setup_notes: list[str] = []
        if self.is_cuda:
            self._open_nvml(nvml)
        self._reset_window()

    # ----------------------------------------------------------------- setup

    def _open_nvml(self, nvml: Any | None) -> None:
        try:
            module = _init_nvml(nvml)
            handle, remap_note = _nvml_handle(module, self.device.index or 0)
        except Exception as exc:  # no library, no driver, no permission, no such GPU: all mean "no NVML here"
            self._setup_notes.append(f"NVML unavailable: {type(exc).__name__}: {exc}")
            return
        self._nvml, self._nvml_handle = module, handle
        if remap_note:
            self._setup_notes.append(remap_note)

    def _reset_window(self) -> None:
        self._source: str | None = None  # "nvml", "rapl" or None (modelled)
        self._readings: list[dict[str, Any]] = []
        self._notes: list[str] = list(self._setup_notes)
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._counter_start_mj: int | None = None
        self._power: _PowerLog | None = None
        self._power_errors = 0
        self._rapl: list[_RaplDomain] = []
        self._rapl_error: _RaplUnreadable | None = None

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    # ----------------------------------------------------------------- NVML

    def _start_nvml(self) -> bool:
        """Take the opening NVML readings; False when neither the counter nor power can be read."""
        nvml, handle = self._nvml, self._nvml_handle
        assert nvml is not None
        try:
            self._counter_start_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
            self._readings.append({"t": self._now(), "energy_mj": self._counter_start_mj})
        except nvml.NVMLError as exc:  # pre-Volta GPUs and some vGPU/MIG setups report Not Supported
            self._notes.append(f"NVML energy counter unavailable: {exc}")
        power = _PowerLog(MAX_POWER_SAMPLES)
        try:
            power.add(self._now(), float(nvml.nvmlDeviceGetPowerUsage(handle)))
            self._power = power
        except nvml.NVMLError as exc:
            self._notes.append(f"NVML power reading unavailable: {exc}")
        return self._counter_start_mj is not None or self._power is not None

    def _poll_power(self) -> None:
        assert self._nvml is not None and self._power is not None
        try:
            self._power.add(self._now(), float(self._nvml.nvmlDeviceGetPowerUsage(self._nvml_handle)))
        except self._nvml.NVMLError:  # one missed sample only widens a trapezoid; counted and noted
            self._power_errors += 1

    def _finish_nvml(self, duration: float) -> tuple[str, float] | None:
        """(method, joules) from the closing NVML readings, or None to fall back to the model."""
        nvml = self._nvml
        assert nvml is not None
        counter_mj: int | None = None
        if self._counter_start_mj is not None:
            try:
                counter_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(self._nvml_handle))
                self._readings.append({"t": self._now(), "energy_mj": counter_mj})
            except nvml.NVMLError as exc:
                self._notes.append(f"NVML energy counter failed at window end: {exc}")
        if self._power is not None:
            try:
                self._power.add(self._now(), float(nvml.nvmlDeviceGetPowerUsage(self._nvml_handle)), keep=True)
            except nvml.NVMLError:
                self._power_errors += 1
            self._readings.extend(self._power.points)
            if self._power.stride > 1:
                self._notes.append(
                    f"kept every {self._power.stride}th of {self._power.n_raw} power samples; "
                    "joules integrate all of them"
                )
        if self._power_errors:
            self._notes.append(f"{self._power_errors} NVML power reading(s) failed and were skipped")

        if counter_mj is not None and self._counter_start_mj is not None:
            delta_mj = counter_mj - self._counter_start_mj
            if delta_mj > 0:
                if duration < NVML_UPDATE_PERIOD_S:
                    self._notes.append(
                        f"window ({duration:.3f} s) is shorter than NVML's ~{NVML_UPDATE_PERIOD_S} s counter "
                        "update period: the counter difference is quantised"
                    )
                return "nvml_energy_counter", delta_mj / 1000.0
            # A zero step means the counter had not refreshed yet, not that the GPU drew no power.
            reason = "did not advance" if delta_mj == 0 else f"went backwards ({delta_mj} mJ; driver reloaded?)"
            self._notes.append(
                f"NVML energy counter {reason} over the {duration:.3f} s window "
                f"(it updates every ~{NVML_UPDATE_PERIOD_S} s); used sampled power × time instead"
            )
        joules = self._power_joules(duration)
        if joules is None:
            self._notes.append("no usable NVML energy or power reading for this window")
            return None
        return "nvml_power_sampling", joules

    def _power_joules(self, duration: float) -> float | None:
        power = self._power
        if power is None or power.last_mw is None:
            return None
        if power.n_raw < 2 or power.span_s <= 0:  # only the opening sample: hold it over the window
            return power.last_mw * duration / 1000.0
        # The samples' mean power over the window's own duration: the first and last samples are taken a moment
        # inside the window's ends, and the window is what every other figure is divided by.
        return power.millijoules / power.span_s * duration / 1000.0

    # ----------------------------------------------------------------- RAPL

    def _start_rapl(self) -> bool:
        """Take the opening RAPL readings; False (with a note) when RAPL is absent or unreadable."""
        if not self.rapl_root.exists():
            self._notes.append(f"RAPL not present: {self.rapl_root} does not exist")
            return False
        try:
            zones = _rapl_package_zones(self.rapl_root)
            if not zones:
                self._notes.append(f"RAPL not present: no package zones under {self.rapl_root}")
                return False
            for zone, name in zones:
                max_range = self._optional_max_range(zone)
                start = _read_rapl_int(zone / "energy_uj")
                self._rapl.append(
                    _RaplDomain(zone=zone, name=name, max_range_uj=max_range, start_uj=start, last_uj=start)
                )
        except _RaplUnreadable as exc:
            self._notes.append(str(exc))
            self._rapl = []
            return False
        t = self._now()
        self._readings.extend(self._rapl_reading(t, domain) for domain in self._rapl)
        return True

    @staticmethod
    def _optional_max_range(zone: Path) -> int | None:
        # Only needed if the counter wraps inside the window; a missing range is reported then, not now.
        try:
            return _read_int(zone / "max_energy_range_uj")
        except (OSError, ValueError):
            return None

    @staticmethod
    def _rapl_reading(t: float, domain: _RaplDomain) -> dict[str, Any]:
        return {
            "t": t,
            "domain": domain.zone.name,
            "name": domain.name,
            "energy_uj": domain.last_uj,
            "max_energy_range_uj": domain.max_range_uj,
        }

    def _poll_rapl(self) -> None:
        if self._rapl_error is not None:
            return
        try:
            for domain in self._rapl:
                domain.advance(_read_rapl_int(domain.zone / "energy_uj"))
        except _RaplUnreadable as exc:
            self._rapl_error = exc

    def _finish_rapl(self) -> tuple[str, float] | None:
        self._poll_rapl()
        if self._rapl_error is not None:
            self._notes.append(str(self._rapl_error))
            return None
        t = self._now()
        self._readings.extend(self._rapl_reading(t, domain) for domain in self._rapl)
        for domain in self._rapl:
            if domain.wraps:
                self._notes.append(
                    f"RAPL {domain.zone.name} wrapped {domain.wraps} time(s); corrected with max_energy_range_uj"
                )
        self._notes.append("RAPL counts whole CPU packages (other processes included; DRAM not included)")
        return "rapl", sum(domain.total_uj for domain in self._rapl) / 1e6

    # ----------------------------------------------------------------- model

    def _modelled(self, duration: float, cpu_seconds: float) -> tuple[str, float | None]:
        cores = usable_cores()
        # CPU times tick at 10 ms on Linux (USER_HZ), so utilisation over windows of tens of ms is coarse.
        utilisation = min(1.0, cpu_seconds / (duration * cores)) if duration > 0 else 0.0
        tdp, idle = self.modelled_tdp_watts, self.modelled_idle_fraction
        self._readings = [
            {
                "cpu_time_s": cpu_seconds,
                "wall_s": duration,
                "logical_cores": cores,
                "utilisation": utilisation,
                "tdp_watts": tdp,
                "idle_fraction": idle,
            }
        ]
        if tdp is None:
            self._notes.append("no measured energy source and no modelled_tdp_watts given")
            return "unavailable", None
        if self.is_cuda:
            self._notes.append("modelled from this process's CPU time, a proxy that does not measure GPU load")
        # Linear utilisation power model (Cloud Carbon Footprint methodology): idle share plus a utilisation share.
        return "modelled", tdp * (idle + (1.0 - idle) * utilisation) * duration

    # ----------------------------------------------------------------- context manager

    def _sample_loop(self, interval_s: float, poll: Callable[[], None]) -> None:
        try:
            # Event.wait doubles as the sleep, so stopping takes at most one interval.
            while not self._stop.wait(interval_s):
                poll()
        except BaseException as exc:  # surfaced in __exit__ rather than dying silently in the thread
            self._sampler_error = exc

    def _start_sampler(self, interval_s: float, poll: Callable[[], None]) -> None:
        self._thread = threading.Thread(
            target=self._sample_loop, args=(interval_s, poll), name="recbench-energy-sampler", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> EnergyTracker:
        self._result = None
        self._sampler_error = None
        self._reset_window()
        self._stop.clear()
        _cuda_sync(self.device)
        self._cpu0 = self._cpu_seconds()  # taken for every method: a measured source may fail at exit
        self._t0 = time.perf_counter()
        if self._nvml is not None and self._start_nvml():
            self._source = "nvml"
            if self._power is not None:
                self._start_sampler(self.sample_interval_s, self._poll_power)
        elif self.device.type == "cpu" and self._start_rapl():
            self._source = "rapl"
            self._start_sampler(max(self.sample_interval_s, RAPL_POLL_INTERVAL_S), self._poll_rapl)
        elif self.device.type not in ("cpu", "cuda"):
            self._notes.append(f"no measured energy source for device type {self.device.type!r}")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        _cuda_sync(self.device)  # before stopping the sampler, so power samples cover the GPU's tail of work
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        duration = time.perf_counter() - self._t0
        measured: tuple[str, float] | None = None
        if self._source == "nvml":
            measured = self._finish_nvml(duration)
        elif self._source == "rapl":
            measured = self._finish_rapl()
        if measured is not None:
            method, joules = measured
            estimated = False
        else:
            method, joules_or_none = self._modelled(duration, self._cpu_seconds() - self._cpu0)
            joules, estimated = joules_or_none, method == "modelled"
        self._result = EnergyResult(
            method=method,
            estimated=estimated,
            joules=joules,
            duration_s=duration,
            average_watts=None if joules is None or duration <= 0 else joules / duration,
            readings=self._readings,
            notes=self._notes,
        )
        if self._sampler_error is not None and exc_type is None:
            raise RuntimeError("EnergyTracker: the sampler thread failed") from self._sampler_error

    def result(self) -> EnergyResult:
        """The finished window's energy; only valid after the `with` block has exited."""
        if self._result is None:
            raise RuntimeError("EnergyTracker.result() called before the tracked window closed")
        return self._result
