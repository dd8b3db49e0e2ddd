"""What machine and software a benchmark ran on, recorded next to every result.

Everything here must be cheap (< 0.5 s) and must never raise because some probe is unavailable: a
missing git binary or NVML library makes the corresponding field None, not the run fail.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
import socket
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

import bench

# The project checkout: bench/hardware/environment.py -> repo root. Tests monkeypatch this.
REPO_DIR: Path = Path(__file__).resolve().parents[2]

CPUINFO_PATH = "/proc/cpuinfo"

# Flags that decide which CPU kernels (and hence which dtypes) are fast on this machine.
RELEVANT_CPU_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

MACHINE_ENV_VAR = "RECBENCH_MACHINE"
_SLUG_MAX_LEN = 96
_GIT_TIMEOUT_S = 5.0

# Marketing noise in CPU model strings that only lengthens folder names.
_CPU_NOISE = re.compile(r"\((?:r|tm)\)|\bcpu\b|\bprocessor\b|@.*$|\b\d+-core\b", re.IGNORECASE)


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
    flags = set(_cpuinfo().get("flags", "").split())
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
    }
    env["machine_slug"] = machine_slug(env)
    return env


def _torch_cpu_capability() -> str | None:
    # What ATen actually dispatches to (e.g. "AVX512"), which can differ from the raw flags.
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:
        return None


def _slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:_SLUG_MAX_LEN].rstrip("-")


def machine_slug(env: dict[str, Any] | None = None) -> str:
    """Short filesystem-safe hardware name for results folders.

    E.g. "amd-epyc-7b13-2c" or "intel-xeon-platinum-8481c-8c-1xnvidia-h100-80gb-hbm3".
    The RECBENCH_MACHINE environment variable overrides it (still slugified, so it stays a safe name).
    """
    override = os.environ.get(MACHINE_ENV_VAR, "").strip()
    if override:
        return _slugify(override) or "machine"
    if env is None:
        model, cores = cpu_model(), psutil.cpu_count(logical=True)
        gpu_names = [d["name"] for d in _cuda_devices()]
    else:
        model, cores = env.get("cpu_model") or "unknown-cpu", env.get("cpu_logical_cores")
        gpu_names = [d["name"] for d in env.get("cuda", {}).get("devices", [])]
    # Logical cores: that is what the benchmark's threads get, and what a cloud VM is sold by.
    parts = [_CPU_NOISE.sub(" ", model), f"{cores or 0}c"]
    parts += [f"{count}x{name}" for name, count in Counter(gpu_names).items()]
    return _slugify(" ".join(parts)) or "machine"


def other_processes_cpu_fraction(window_s: float = 0.25) -> float:
    """The share of all logical cores that other processes used over a short window. Other work inflates
    timings badly (torch's threads spin while they wait for a core); the load average would also count this
    process's own previous points, so CPU times are differenced instead."""
    import time

    cores = psutil.cpu_count(logical=True) or 1
    me = psutil.Process()
    system_before, mine_before = psutil.cpu_times(), me.cpu_times()
    time.sleep(window_s)
    system_after, mine_after = psutil.cpu_times(), me.cpu_times()
    busy = (sum(system_after) - system_after.idle) - (sum(system_before) - system_before.idle)
    mine = (mine_after.user + mine_after.system) - (mine_before.user + mine_before.system)
    return max(0.0, busy - mine) / (window_s * cores)
