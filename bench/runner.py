"""Run scenario files: expand sweeps into points, check them all against this machine first, skip completed
ones on --resume, run each point as a self-contained job (bench.measurement.point.run_point) and write its
result as soon as it completes."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.core.device import Device
from bench.core.errors import InputError
from bench.core.interrupts import raise_if_stopped
from bench.hardware.environment import cpu_model, machine_slug, this_machine
from bench.hardware.tiers import Tier, load_tiers, tier_for_machine
from bench.measurement.inputs import InputsCache, check_prompts_fit
from bench.measurement.point import run_point
from bench.measurement.preflight import check_runnable
from bench.results.model import Result
from bench.results.store import completed_spec_hashes, machine_folder, write_result
from bench.scenarios.loader import DEFAULT_READ_OPTIONS, ReadOptions, ScenarioPoint, expand_points

DEFAULT_RESULTS_DIR = Path("results")
UNSAVED_DIR = "recbench-unsaved"  # under the system's temporary folder: where a result goes when its folder fails


@dataclass
class RunSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # point keys already measured (--resume)


def plan_points(paths: list[Path], options: ReadOptions = DEFAULT_READ_OPTIONS) -> list[ScenarioPoint]:
    """Validate every file and point against this machine before anything runs, so a typo in point 9 is found
    before point 1 spends an hour: the static checks, the device, memory, and prompts that cannot fit (which
    needs the data and the tokenizer, shared by points that differ only in what does not change them)."""
    points: list[ScenarioPoint] = []
    problems: list[str] = []
    inputs = InputsCache()
    for path in paths:
        try:
            file_points = expand_points(path, options)
        except InputError as exc:
            problems.append(str(exc))
            continue
        for point in file_points:
            try:
                _check_point(point, inputs)
            except InputError as exc:
                problems.append(str(exc))
        points.extend(file_points)
    if problems:
        raise InputError("\n".join(problems))
    return points


def _check_point(point: ScenarioPoint, inputs: InputsCache) -> None:
    try:
        check_runnable(point.scenario)
        check_prompts_fit(point.scenario, inputs.get(point.scenario))
    except InputError as exc:
        raise InputError(f"{point.source_file}: {point.where}{exc}") from None


def machine_tier(device: str, tiers: dict[str, Tier], override: str | None = None) -> Tier | None:
    """The catalogue tier this machine is, for a scenario's device (override: a tier name)."""
    if override:
        if override not in tiers:
            raise InputError(f"--tier: unknown tier {override!r}; known tiers: {', '.join(tiers)}")
        return tiers[override]
    parsed = Device.parse(device)
    name = torch.cuda.get_device_name(parsed.cuda_index) if parsed.is_cuda else cpu_model()
    return tier_for_machine(device=device, device_name=name, fingerprint=this_machine(), tiers=tiers)


def run_scenarios(
    paths: list[Path],
    *,
    results_dir: Path = DEFAULT_RESULTS_DIR,
    resume: bool = False,
    tier: str | None = None,
    tiers_files: Sequence[Path] = (),
    show_progress: bool = True,
    console: Console | None = None,
    on_written: Callable[[Path], None] | None = None,
    options: ReadOptions = DEFAULT_READ_OPTIONS,
) -> RunSummary:
    """Run every point of every file; each result is on disk before the next point starts."""
    points = plan_points(paths, options)
    catalogue = load_tiers(tiers_files)
    tiers = {device: machine_tier(device, catalogue, tier) for device in {p.scenario.device for p in points}}
    machine = machine_slug()
    machine_dir = machine_folder(results_dir, machine)
    _check_writable(machine_dir)
    done = completed_spec_hashes(results_dir, machine) if resume else set()
    summary = RunSummary()
    console = console or Console(stderr=True)
    with _progress(console, show_progress) as progress:
        points_task = progress.add_task("points", total=len(points))
        for point in points:
            raise_if_stopped()
            label = f"{point.scenario.name} [{point.key}]"
            if point.spec_hash in done:
                summary.skipped.append(label)
                progress.advance(points_task)
                continue
            iterations_task = progress.add_task(label, total=point.scenario.repetitions.min_iterations)

            def report(done: int, target: int, task: int = iterations_task) -> None:
                progress.update(task, completed=min(done, target), total=target)  # load runs report queries

            try:
                result = run_point(point, machine_dir=machine_dir, progress=report, tier=tiers[point.scenario.device])
            except InputError as exc:  # found only once data or model exist: name the file and point
                raise InputError(f"{point.source_file}: {point.where}{exc}") from None
            except (MemoryError, torch.OutOfMemoryError):
                raise InputError(
                    f"{point.source_file}: {point.where}out of memory on {point.scenario.device}: lower "
                    "batch_size, max_prompt_tokens or workload.candidates (results written so far are kept)"
                ) from None
            path = _store(result, results_dir)
            summary.written.append(path)
            if on_written:
                on_written(path)
            progress.remove_task(iterations_task)
            progress.advance(points_task)
            del result
            gc.collect()  # release the point's model before the next one is built
    return summary


def _check_writable(folder: Path) -> None:
    """Fail before measuring anything, not after the first point, when results cannot be stored: the folder
    they go to is created and a file is written there and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".recbench-write-check-"):
            pass
    except OSError as exc:
        raise InputError(f"--results-dir: {folder}: results cannot be written there ({exc.strerror})") from None


def _store(result: Result, results_dir: Path) -> Path:
    """Write a measured result; if that fails now (the disk filled, the folder was replaced), the measurement is
    not lost: it goes to a fallback folder that the error names."""
    try:
        return write_result(result, results_dir)
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / UNSAVED_DIR
        try:
            saved = write_result(result, fallback)
        except OSError as second:
            raise InputError(
                f"--results-dir: {results_dir}: the result could not be written ({exc.strerror}), nor to {fallback} "
                f"({second.strerror})"
            ) from None
        raise InputError(
            f"--results-dir: {results_dir}: the result could not be written ({exc.strerror}); it was saved to "
            f"{saved} instead: move it into place once the folder is fixed"
        ) from None


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )
