"""Run scenario files: expand sweeps into points, check them all against this machine first, skip completed
ones on --resume, run each point as a self-contained job (bench.measurement.point.run_point) and write its
result as soon as it completes."""

from __future__ import annotations

import tempfile
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.core.errors import InputError
from bench.core.names import inside
from bench.execution.executor import Executor
from bench.execution.jobs import JobOutcome, PointJob, keep_calibration, pack_calibration
from bench.execution.local import LocalExecutor
from bench.hardware.environment import machine_slug
from bench.hardware.tiers import load_tiers
from bench.measurement.inputs import InputsCache, check_prompts_fit
from bench.measurement.preflight import check_runnable
from bench.results.model import Execution, Result
from bench.results.store import completed_spec_hashes, machine_folder, write_result
from bench.scenarios.loader import DEFAULT_READ_OPTIONS, ReadOptions, ScenarioPoint, expand_points

DEFAULT_RESULTS_DIR = Path("results")
UNSAVED_DIR = "recbench-unsaved"  # under the system's temporary folder: where a result goes when its folder fails


@dataclass
class RunSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # point keys already measured (--resume)


def plan_points(
    paths: list[Path],
    options: ReadOptions = DEFAULT_READ_OPTIONS,
    *,
    on_this_machine: bool = True,
    lone_point_checked_by_its_set_up: bool = False,
) -> list[ScenarioPoint]:
    """Validate every file and point before anything runs, so a typo in point 9 is found before point 1 spends
    an hour: the static checks and, for points that run here, the device, memory, and prompts that cannot fit
    (which needs the data and the tokenizer, shared by points that differ only in what does not change them).
    Points bound for a cluster are checked by the worker that runs them. With `lone_point_checked_by_its_set_up`,
    a single point skips the prompt check here: its set-up makes the same check before building a model, and
    building the data twice cost the quickstart 0.1-0.17 s of start-up (2-core AVX2 EPYC, 2026-11-29). The error
    is the same line with the same exit status; it comes after the run's own checks (--tier, the results folder)."""
    points: list[ScenarioPoint] = []
    problems: list[str] = []
    for path in paths:
        try:
            points.extend(expand_points(path, options))
        except InputError as exc:
            problems.append(str(exc))
    if on_this_machine:
        check_inputs = not (lone_point_checked_by_its_set_up and len(points) == 1 and not problems)
        problems += _check_points(points, check_inputs=check_inputs)
    if problems:
        raise InputError("\n".join(problems))
    return points


def _check_points(points: list[ScenarioPoint], *, check_inputs: bool) -> list[str]:
    problems: list[str] = []
    inputs = InputsCache()
    for point in points:
        try:
            check_runnable(point.scenario)
            if check_inputs:
                check_prompts_fit(point.scenario, inputs.get(point.scenario))
        except InputError as exc:
            problems.append(f"{point.source_file}: {point.where}{exc}")
    return problems


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
    executor: Executor | None = None,
) -> RunSummary:
    """Run every point of every file on `executor` (default: this process, one point after the other) and write
    each result as it arrives. With the local executor the first error stops the sweep; with a cluster every
    point runs and the errors are reported together at the end. Results already written are always kept."""
    local = executor is None or executor.on_this_machine
    points = plan_points(paths, options, on_this_machine=local, lone_point_checked_by_its_set_up=True)
    catalogue = load_tiers(tiers_files)
    if tier is not None and tier not in catalogue:
        raise InputError(f"--tier: unknown tier {tier!r}; known tiers: {', '.join(catalogue)}")
    machine = machine_slug() if local else None  # None: the cluster picks each point's machine
    _check_writable(machine_folder(results_dir, machine) if machine else Path(results_dir))
    if executor is None:
        executor = LocalExecutor(machine_folder(results_dir, machine or machine_slug()))
    done = completed_spec_hashes(results_dir, machine) if resume else set()
    summary = RunSummary()
    # Workers elsewhere get the GEMM-peak caches of this results folder; the local executor reads them in place.
    calibration = {} if executor.on_this_machine else pack_calibration(Path(results_dir))
    jobs = []
    for point in points:
        if point.spec_hash in done:
            summary.skipped.append(f"{point.scenario.name} [{point.key}]")
        else:
            jobs.append(PointJob(point=point, tiers=catalogue, tier_override=tier, calibration=calibration))
    failures: list[str] = []
    console = console or Console(stderr=True)
    with _progress(console, show_progress) as progress:
        points_task = progress.add_task("points", total=len(points), completed=len(summary.skipped))

        def deliver(job: PointJob, outcome: JobOutcome, execution: Execution | None) -> None:
            progress.advance(points_task)
            if outcome.result is None:
                failures.append(outcome.error or f"{job.label}: failed")
                return
            result = outcome.result if execution is None else outcome.result.model_copy(update={"execution": execution})
            result = _write_logs(result, outcome.logs, results_dir)
            path = _store(result, results_dir)
            # After the result is safe: a cache that cannot be written costs a later run 2 s, nothing more.
            try:
                keep_calibration(outcome.calibration, results_dir, machine=result.machine)
            except (OSError, InputError) as exc:
                warnings.warn(f"{job.label}: the worker's GEMM-peak cache was not kept: {exc}", stacklevel=2)
            summary.written.append(path)
            if on_written:
                on_written(path)

        executor.run(jobs, deliver=deliver, progress=progress)
    if failures:
        kept = f" ({len(summary.written)} other point(s) written)" if summary.written else ""
        raise InputError("\n".join(failures) + kept)
    return summary


def _write_logs(result: Result, logs: dict[str, bytes], results_dir: Path) -> Result:
    """A remote point's LoadGen logs, written under results/<machine>/ where its result says they are (in a
    folder of their own when that name is taken: the result is pointed there)."""
    if not logs or result.load is None:
        return result
    machine_dir = machine_folder(results_dir, result.machine)
    old = result.load.log_dir.split("/")[0]
    new = old
    while (machine_dir / new).exists():
        new = f"{old}-{uuid.uuid4().hex[:6]}"
    for relative, content in logs.items():
        target = inside(machine_dir, relative.replace(old, new, 1))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if new == old:
        return result
    return Result.model_validate_json(result.model_dump_json().replace(f'"{old}', f'"{new}'))


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
        # Only on a terminal: elsewhere (a log file, CI) it draws nothing useful, and left one empty line.
        disable=not (enabled and console.is_terminal),
        transient=True,
    )
