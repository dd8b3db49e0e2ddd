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


# cgroup CPU quotas: v2 (`cpu.max`: "QUOTA PERIOD" or "max PERIOD") and v1 (two files), in microseconds.
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def usable_cores() -> int:
    """The logical cores this process may use: its affinity mask (taskset, cpusets), capped by a CFS quota
    rounded up (docker --cpus, Kubernetes CPU limits). A container given 4 cores of a 64-core host is a 4-core
    machine for a benchmark: what the fingerprint, tier matching and CPU utilisation count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        cores = psutil.cpu_count(logical=True) or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota is not None else cores


def cgroup_cpu_quota() -> float | None:
    """This process's cgroup CPU quota in cores (None: no quota, or not readable). Only its own cgroup is read;
    a lower limit set on a parent cgroup is not seen."""
    for quota_file, period_file in _quota_files():
        try:
            if period_file is None:
                quota, period = quota_file.read_text().split()[:2]
            else:
                quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
            if quota in ("max", "-1"):
                return None
            cores = int(quota) / int(period)
        except (OSError, ValueError, ZeroDivisionError):
            continue
        return cores if cores > 0 else None
    return None


def _quota_files() -> list[tuple[Path, Path | None]]:
    """Where this process's quota may be, in order: its cgroup v2 folder, the v2 root (inside a container's
    cgroup namespace), the v1 cpu controller."""
    v2_own = []
    try:
        for line in PROC_SELF_CGROUP.read_text().splitlines():
            if line.startswith("0::"):
                v2_own.append(CGROUP_ROOT / line[3:].lstrip("/") / "cpu.max")
    except OSError:
        pass
    files: list[tuple[Path, Path | None]] = [(path, None) for path in [*v2_own, CGROUP_ROOT / "cpu.max"]]
    for name in ("cpu", "cpu,cpuacct"):
        files.append((CGROUP_ROOT / name / "cpu.cfs_quota_us", CGROUP_ROOT / name / "cpu.cfs_period_us"))
    return files


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
        "cpu_logical_cores": psutil.cpu_count(logical=True),
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
    """The share of all logical cores that other processes used while the `with` block ran. Other work
    inflates timings badly (torch's threads spin while they wait for a core); the load average would also count
    this process's own work, so CPU times are differenced instead, which lets the block do useful work (a
    point's set-up) rather than sleep. A block shorter than `min_window_s` is padded with a sleep: CPU times
    tick every 10 ms."""

    def __init__(self, min_window_s: float = 0.25) -> None:
        self.min_window_s = min_window_s
        self.share = 0.0

    def __enter__(self) -> OtherProcessesCpu:
        self._process = psutil.Process()
        self._started = time.perf_counter()
        self._system, self._mine = psutil.cpu_times(), self._process.cpu_times()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        elapsed = time.perf_counter() - self._started
        if exc_type is not None:
            return  # the block failed: no point waits for a figure nobody will read
        if elapsed < self.min_window_s:
            time.sleep(self.min_window_s - elapsed)
            elapsed = self.min_window_s
        system, mine = psutil.cpu_times(), self._process.cpu_times()
        busy = _busy_seconds(system) - _busy_seconds(self._system)
        own = _own_seconds(mine) - _own_seconds(self._mine)
        cores = psutil.cpu_count(logical=True) or 1
        self.share = max(0.0, busy - own) / (elapsed * cores)


def _busy_seconds(times: Any) -> float:
    """CPU time spent running something: waiting for I/O is idle time (this process's own reads would count),
    and guest time is already inside user time on Linux."""
    fields = ("user", "nice", "system", "irq", "softirq", "steal")
    return sum(getattr(times, name, 0.0) for name in fields)


def _own_seconds(times: Any) -> float:
    """This process's CPU time, its threads and the children it has waited for included."""
    fields = ("user", "system", "children_user", "children_system")
    return sum(getattr(times, name, 0.0) for name in fields)
