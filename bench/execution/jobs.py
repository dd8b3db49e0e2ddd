"""One sweep point as a self-contained job, and the function that runs it on whatever machine it lands on."""

from __future__ import annotations

import fnmatch
import gc
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.core.collector import freeze_imported_objects
from bench.core.device import Device
from bench.core.errors import InputError
from bench.core.names import inside
from bench.hardware.allocator import keep_freed_memory, release_freed_memory
from bench.hardware.environment import cpu_model, machine_slug, this_machine
from bench.hardware.gemm_peak import CACHE_FILE_PATTERN, MAX_CACHE_FILE_BYTES, keep_if_better
from bench.hardware.tiers import Tier, tier_for_machine
from bench.measurement.point import ProgressCallback, run_point
from bench.results.model import Result
from bench.results.reader import CALIBRATION_DIR, LOADGEN_DIR_SUFFIX
from bench.results.store import machine_folder
from bench.scenarios.loader import ScenarioPoint


@dataclass(frozen=True)
class PointJob:
    """Everything a machine needs to measure one point: the resolved spec and the tier catalogue."""

    point: ScenarioPoint
    tiers: dict[str, Tier]
    tier_override: str | None = None  # --tier: the catalogue tier the running machine is taken to be
    # The driver's GEMM-peak cache files ("<machine>/calibration/<file>" -> content), so a worker starts from the
    # best figure its machine has shown, as a local run does, instead of one fresh measurement per point.
    calibration: dict[str, bytes] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.point.scenario.name} [{self.point.key}]"


@dataclass
class JobOutcome:
    """A job's result, or the one-line error that stopped it (measurement errors are results, not crashes)."""

    result: Result | None = None
    error: str | None = None
    logs: dict[str, bytes] = field(default_factory=dict)  # LoadGen log files, relative to results/<machine>/
    calibration: dict[str, bytes] = field(default_factory=dict)  # the worker's GEMM-peak cache, as in PointJob
    node: str | None = None  # the host that ran the job


def machine_tier(device: str, tiers: dict[str, Tier], override: str | None = None) -> Tier | None:
    """The catalogue tier this machine is, for a scenario's device (override: a tier name)."""
    if override:
        if override not in tiers:
            raise InputError(f"--tier: unknown tier {override!r}; known tiers: {', '.join(tiers)}")
        return tiers[override]
    parsed = Device.parse(device)
    name = torch.cuda.get_device_name(parsed.cuda_index) if parsed.is_cuda else cpu_model()
    return tier_for_machine(device=device, device_name=name, fingerprint=this_machine(), tiers=tiers)


def measure_job(job: PointJob, machine_dir: Path, progress: ProgressCallback | None = None) -> Result:
    """Measure the point on this machine (InputError for a problem found at run time, naming file and point)."""
    point = job.point
    freeze_imported_objects()
    keep_freed_memory()  # before the model is built: batches reuse freed memory instead of faulting it back in
    try:
        tier = machine_tier(point.scenario.device, job.tiers, job.tier_override)
        return run_point(point, machine_dir=machine_dir, progress=progress, tier=tier)
    except InputError as exc:  # found only once data or model exist: name the file and point
        raise InputError(f"{point.source_file}: {point.where}{exc}") from None
    except (MemoryError, torch.OutOfMemoryError):
        raise InputError(
            f"{point.source_file}: {point.where}out of memory on {point.scenario.device}: lower "
            "batch_size, max_prompt_tokens or workload.candidates (results written so far are kept)"
        ) from None


def run_job(job: PointJob) -> JobOutcome:
    """Run a job in a worker process: measured in a scratch folder (its GEMM-peak cache and LoadGen logs), the
    result and the log files returned for the driver to write. A measurement error is returned, not raised, so
    an executor never retries it; a crash of the process itself is the executor's to handle."""
    with tempfile.TemporaryDirectory(prefix="recbench-job-") as scratch:
        machine_dir = Path(scratch) / machine_slug()
        _unpack_calibration(job.calibration, machine_dir)
        try:
            result = measure_job(job, machine_dir)
        except InputError as exc:
            outcome = JobOutcome(error=str(exc), node=socket.gethostname())
        else:
            logs = {
                str(path.relative_to(machine_dir)): path.read_bytes()
                for folder in machine_dir.glob(f"*{LOADGEN_DIR_SUFFIX}")
                for path in folder.rglob("*")
                if path.is_file()
            }
            outcome = JobOutcome(
                result=result, logs=logs, calibration=pack_calibration(machine_dir.parent), node=socket.gethostname()
            )
    release_point_memory()  # the worker may run another point next
    return outcome


def pack_calibration(results_dir: Path) -> dict[str, bytes]:
    """Every machine's GEMM-peak cache files under a results folder, as "<machine>/calibration/<file>" ->
    content (files too large to be one are left out)."""
    return {
        path.relative_to(results_dir).as_posix(): path.read_bytes()
        for path in sorted(Path(results_dir).glob(f"*/{CALIBRATION_DIR}/{CACHE_FILE_PATTERN}"))
        if path.is_file() and path.stat().st_size <= MAX_CACHE_FILE_BYTES
    }


def _unpack_calibration(files: dict[str, bytes], machine_dir: Path) -> None:
    """The cache files of this worker's own machine, into its scratch results folder."""
    prefix = f"{machine_dir.name}/{CALIBRATION_DIR}/"
    for relative, content in files.items():
        if relative.startswith(prefix):
            target = inside(machine_dir.parent, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def keep_calibration(files: dict[str, bytes], results_dir: Path, *, machine: str) -> None:
    """A worker's GEMM-peak cache files for `machine` (the one its result was measured on), into
    results/<machine>/calibration/ where they beat what is there; files for any other folder are ignored."""
    for relative, content in files.items():
        parts = relative.split("/")
        ours = len(parts) == 3 and parts[0] == machine and parts[1] == CALIBRATION_DIR
        if ours and fnmatch.fnmatch(parts[2], CACHE_FILE_PATTERN):
            keep_if_better(inside(machine_folder(results_dir, machine), CALIBRATION_DIR, parts[2]), content)


def release_point_memory() -> None:
    """After a point: free its model and tensors, then the heap glibc kept for them (bench.hardware.allocator),
    so the next point is built, and its RSS measured, from a clean start."""
    gc.collect()
    release_freed_memory()


JobFunction = Callable[[PointJob], JobOutcome]
