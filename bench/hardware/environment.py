"""What machine and software a benchmark ran on, recorded next to every result.

Everything here must be cheap (< 0.5 s) and must never raise because some probe is unavailable: a
missing git binary or NVML library makes the corresponding field None, not the run fail.
"""

from __future__ import annotations

import functools
import gc
import importlib.metadata
import math
import os
import platform
import socket
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

import bench
from bench.hardware.allocator import allocator_settings
from bench.hardware.fingerprint import Fingerprint, fingerprint_of, machine_key, slugify

# The project checkout: bench/hardware/environment.py -> repo root. Tests monkeypatch this.
REPO_DIR: Path = Path(__file__).resolve().parents[2]

CPUINFO_PATH = "/proc/cpuinfo"

# Flags that decide which CPU kernels (and hence which dtypes) are fast on this machine (x86 `flags`, Arm
# `Features` in /proc/cpuinfo).
RELEVANT_CPU_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "sve", "asimd")

MACHINE_ENV_VAR = "RECBENCH_MACHINE"
_GIT_TIMEOUT_S = 5.0


@functools.cache
def _cpuinfo(path: str = CPUINFO_PATH) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as key -> value; empty where the file is absent."""
    info: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    if info:
                        break  # every processor block repeats the same model and flags
                    continue
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_model() -> str:
    model = _cpuinfo().get("model name", "")
    return model or platform.processor() or platform.machine() or "unknown-cpu"


def cpu_flags() -> dict[str, bool]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return {flag: flag in flags for flag in RELEVANT_CPU_FLAGS}


def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 arithmetic instructions; without them bf16 matmuls are emulated and slow."""
    flags = cpu_flags()
    return flags["avx512_bf16"] or flags["amx_bf16"]


def _run_git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # git missing, REPO_DIR gone, hung git
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """{"git_commit": sha | None, "git_dirty": bool | None} for the project checkout.

    Only counts when REPO_DIR is itself the repository root: a non-editable install sitting inside some
    other repository (e.g. a venv inside a checkout) must not report that repository's commit.
    """
    none: dict[str, Any] = {"git_commit": None, "git_dirty": None}
    toplevel = _run_git("rev-parse", "--show-toplevel")
    if toplevel is None or Path(toplevel.strip()).resolve() != Path(REPO_DIR).resolve():
        return none
    head = _run_git("rev-parse", "HEAD")
    if head is None:  # a repository with no commits yet
        return none
    status = _run_git("status", "--porcelain")
    return {"git_commit": head.strip(), "git_dirty": None if status is None else bool(status.strip())}


def _package_version(name: str) -> str | None:
    # Metadata lookup rather than import: importing transformers alone takes over a second.
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _nvidia_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # NVML is optional: no library, no driver, no permission are all just "unknown"
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def _cuda_devices() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "total_memory_bytes": int(props.total_memory),
                "compute_capability": f"{props.major}.{props.minor}",
            }
        )
    return devices


def cuda_environment() -> dict[str, Any]:
    import torch

    devices = _cuda_devices()
    return {
        "available": torch.cuda.is_available(),
        "device_count": len(devices),
        "devices": devices,
        "torch_cuda_version": torch.version.cuda,
        "driver_version": _nvidia_driver_version(),
    }


# cgroup CPU bandwidth limits, in microseconds of CPU time per period: cgroup v2's `cpu.max` holds "QUOTA PERIOD"
# or "max PERIOD" (https://docs.kernel.org/admin-guide/cgroup-v2.html, section "CPU Interface Files"); cgroup v1
# splits them into cpu.cfs_quota_us (-1: no limit) and cpu.cfs_period_us
# (https://docs.kernel.org/scheduler/sched-bwc.html). Both read 2026-11-29.
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def host_cores() -> int:
    """Every logical core of the machine (the host, from inside a container)."""
    return psutil.cpu_count(logical=True) or 1


def usable_cores() -> int:
    """The logical cores this process may use: its affinity mask (taskset, cpusets), capped by a CPU quota
    rounded up (docker --cpus and Kubernetes CPU limits set one). A container given 4 cores of a 64-core host is
    a 4-core machine for a benchmark: what the fingerprint, tier matching, torch's threads and CPU utilisation
    count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        cores = host_cores()
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cgroup_cpu_quota() -> float | None:
    """The tightest CPU quota, in cores, on this process's cgroup and on every cgroup above it (a pod's or a
    container's limit binds the cgroups inside it). None: no quota, or nothing readable."""
    quotas = [quota for files in _quota_files() if (quota := _read_quota(*files)) is not None]
    return min(quotas, default=None)


def _read_quota(quota_file: Path, period_file: Path | None) -> float | None:
    try:
        if period_file is None:  # v2: both figures in one file
            quota, period = quota_file.read_text().split()[:2]
        else:
            quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
        if quota in ("max", "-1"):
            return None
        cores = int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return cores if cores > 0 else None


def _quota_files() -> list[tuple[Path, Path | None]]:
    """Every file that may hold a quota on this process (see _cgroup_folders): cgroup v2's cpu.max, v1's pair."""
    v2, v1 = _cgroup_folders()
    return [(folder / "cpu.max", None) for folder in v2] + [
        (folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us") for folder in v1
    ]


def _cgroup_folders() -> tuple[list[Path], list[Path]]:
    """The cgroup folders that may limit this process, its own first: cgroup v2's own cgroup and each one above
    it up to the root (inside a container's cgroup namespace, the container's own), and cgroup v1's cpu
    controller likewise (where the container sees the host's path, only the mount's root exists)."""
    own_v2: str | None = None
    own_v1 = "/"
    try:
        for line in PROC_SELF_CGROUP.read_text().splitlines():
            hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
            if hierarchy == "0" and not controllers:
                own_v2 = path
            elif "cpu" in controllers.split(","):
                own_v1 = path
    except OSError:
        pass
    v1 = [folder for name in ("cpu", "cpu,cpuacct") for folder in _up(CGROUP_ROOT / name, own_v1)]
    return _up(CGROUP_ROOT, own_v2 or "/"), v1


def cgroup_throttling() -> dict[Path, tuple[int, int]]:
    """(enforcement periods, periods in which the quota throttled the group) so far, from each readable cpu.stat
    of this process's cgroups: `nr_periods` and `nr_throttled`, the same keys in v1 and v2
    (https://docs.kernel.org/scheduler/sched-bwc.html, "Statistics", read 2026-11-29). For a benchmark any
    throttled period is a wait inside the timings."""
    v2, v1 = _cgroup_folders()
    found: dict[Path, tuple[int, int]] = {}
    for folder in [*v2, *v1]:
        try:
            pairs = dict(
                line.split(maxsplit=1) for line in (folder / "cpu.stat").read_text().splitlines() if " " in line
            )
            found[folder] = (int(pairs["nr_periods"]), int(pairs["nr_throttled"]))
        except (OSError, KeyError, ValueError):
            continue
    return found


def _up(root: Path, path: str) -> list[Path]:
    """root/path and every folder above it up to root; `..` and `.` are dropped, so nothing lies outside root."""
    parts = [part for part in path.split("/") if part not in ("", ".", "..")]
    return [root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def collect_environment() -> dict[str, Any]:
    """A JSON-serialisable description of this machine and software stack."""
    import torch

    uname = platform.uname()
    env: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": uname.system,
        "os_release": uname.release,
        "platform": platform.platform(),
        "machine": uname.machine,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_has_native_bf16": cpu_has_native_bf16(),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "cpu_logical_cores": host_cores(),
        "cpu_usable_cores": usable_cores(),
        "ram_total_bytes": int(psutil.virtual_memory().total),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_cpu_capability": _torch_cpu_capability(),
        "transformers_version": _package_version("transformers"),
        "numpy_version": _package_version("numpy"),
        "recbench_version": bench.__version__,
        **git_state(),
        "cuda": cuda_environment(),
        "allocator": allocator_settings(),
        "gc_frozen_objects": gc.get_freeze_count() or None,
    }
    fingerprint = environment_fingerprint(env)
    env["fingerprint"] = {**asdict(fingerprint), "digest": fingerprint.digest}
    env["machine_slug"] = machine_slug(fingerprint)
    return env


def environment_fingerprint(env: dict[str, Any]) -> Fingerprint:
    """The fingerprint of the machine an environment dict describes (a fresh one, or one read from a result)."""
    return fingerprint_of(
        cpu_model=env.get("cpu_model") or "unknown-cpu",
        flags=env.get("cpu_flags") or {},
        logical_cores=env.get("cpu_usable_cores") or env.get("cpu_logical_cores"),
        ram_bytes=env.get("ram_total_bytes") or 0,
        gpu_names=[d["name"] for d in (env.get("cuda") or {}).get("devices", [])],
        torch_version=env.get("torch_version") or "unknown",
    )


def this_machine() -> Fingerprint:
    """This machine's fingerprint (imports torch: for its version and the GPUs it sees)."""
    import torch

    return fingerprint_of(
        cpu_model=cpu_model(),
        flags=cpu_flags(),
        logical_cores=usable_cores(),
        ram_bytes=int(psutil.virtual_memory().total),
        gpu_names=[d["name"] for d in _cuda_devices()],
        torch_version=torch.__version__,
    )


def _torch_cpu_capability() -> str | None:
    # What ATen actually dispatches to (e.g. "AVX512"), which can differ from the raw flags.
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:
        return None


def machine_slug(fingerprint: Fingerprint | None = None) -> str:
    """The results folder name of this machine (or of `fingerprint`): readable hardware plus the fingerprint's
    digest (bench.hardware.fingerprint.machine_key). The RECBENCH_MACHINE environment variable overrides it
    (slugified, so it stays a safe name)."""
    override = os.environ.get(MACHINE_ENV_VAR, "").strip()
    if override:
        return slugify(override) or "machine"
    return machine_key(fingerprint or this_machine())


class OtherProcessesCpu:
    """The share of the cores this process may run on (its affinity mask) that other processes used while the
    `with` block ran. Other work inflates timings badly (torch's threads spin while they wait for a core); the
    load average would also count this process's own work, so CPU times are differenced instead, which lets the
    block do useful work (a point's set-up) rather than sleep. CPU times tick every 10 ms, so a block shorter than
    `min_window_s` is padded with a sleep, or with `pad=False` gets no figure (share None)."""

    def __init__(self, min_window_s: float = 0.25, *, pad: bool = True) -> None:
        self.min_window_s = min_window_s
        self.pad = pad
        self.share: float | None = 0.0
        self.cores = host_cores()  # the cores the share is of
        # Of the CPU quota's enforcement periods in the block, (throttled, all), in the cgroup throttled most.
        self.throttled_periods: tuple[int, int] = (0, 0)

    def __enter__(self) -> OtherProcessesCpu:
        self._cpus = _affinity_in_cpu_times()
        if self._cpus is not None:
            self.cores = len(self._cpus)
        self._process = psutil.Process()
        self._started = time.perf_counter()
        self._system, self._mine = self._busy_now(), self._process.cpu_times()
        self._throttling = cgroup_throttling()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        elapsed = time.perf_counter() - self._started
        if exc_type is not None:
            return  # the block failed: no point waits for a figure nobody will read
        self.throttled_periods = _most_throttled(self._throttling, cgroup_throttling())
        if elapsed < self.min_window_s:
            if not self.pad:
                self.share = None
                return
            time.sleep(self.min_window_s - elapsed)
            elapsed = self.min_window_s
        busy = self._busy_now() - self._system
        own = _own_seconds(self._process.cpu_times()) - _own_seconds(self._mine)
        self.share = min(1.0, max(0.0, busy - own) / (elapsed * self.cores))  # ticks can round past 1

    def _busy_now(self) -> float:
        if self._cpus is None:
            return _busy_seconds(psutil.cpu_times())
        per_cpu = psutil.cpu_times(percpu=True)
        return sum(_busy_seconds(per_cpu[cpu]) for cpu in self._cpus)


def _most_throttled(before: dict[Path, tuple[int, int]], after: dict[Path, tuple[int, int]]) -> tuple[int, int]:
    """(throttled, all) periods between two readings, for the cgroup with the highest throttled share."""
    deltas = [
        (after[folder][1] - start[1], after[folder][0] - start[0])
        for folder, start in before.items()
        if folder in after and after[folder][0] > start[0]
    ]
    return max(deltas, key=lambda delta: delta[0] / delta[1], default=(0, 0))


def _affinity_in_cpu_times() -> list[int] | None:
    """The CPUs this process may run on, as indexes into psutil's per-CPU times; None where there is no affinity
    mask (macOS, Windows), it spans every CPU, or the indexes would not line up (offline CPUs)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None
    listed = len(psutil.cpu_times(percpu=True))
    if len(cpus) >= listed or cpus[-1] >= listed:
        return None
    return cpus


def _busy_seconds(times: Any) -> float:
    """CPU time spent running something: waiting for I/O is idle time (this process's own reads would count),
    and guest time is already inside user time on Linux."""
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return sum(getattr(times, name, 0.0) for name in fields)


def _own_seconds(times: Any) -> float:
    """This process's CPU time, its threads and the children it has waited for included."""
    fields = ("user", "system", "children_user", "children_system")
    return sum(getattr(times, name, 0.0) for name in fields)
