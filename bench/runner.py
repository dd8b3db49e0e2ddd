"""Run scenario files: expand sweeps into points, skip completed ones on --resume, run each point as a
self-contained job (bench.worker.run_point) and write its result as soon as it completes."""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.errors import InputError
from bench.hardware.environment import machine_slug
from bench.results.store import completed_spec_hashes, write_result
from bench.scenarios.loader import ScenarioPoint, expand_points
from bench.worker import check_runnable, run_point

DEFAULT_RESULTS_DIR = Path("results")


@dataclass
class RunSummary:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # point keys already measured (--resume)


def plan_points(paths: list[Path]) -> list[ScenarioPoint]:
    """Validate every file and point before anything runs, so a typo in point 9 is found before point 1
    spends an hour."""
    points: list[ScenarioPoint] = []
    problems: list[str] = []
    for path in paths:
        try:
            file_points = expand_points(path)
            for point in file_points:
                prefix = f"sweep point {point.key}: " if point.values else ""
                try:
                    check_runnable(point.scenario, field_prefix=prefix)
                except InputError as exc:
                    raise InputError(f"{path}: {exc}") from None
            points.extend(file_points)
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("\n".join(problems))
    return points


def run_scenarios(
    paths: list[Path],
    *,
    results_dir: Path = DEFAULT_RESULTS_DIR,
    resume: bool = False,
    show_progress: bool = True,
    console: Console | None = None,
    on_written: Callable[[Path], None] | None = None,
) -> RunSummary:
    """Run every point of every file; each result is on disk before the next point starts."""
    points = plan_points(paths)
    machine = machine_slug()
    summary = RunSummary()
    console = console or Console(stderr=True)
    with _progress(console, show_progress) as progress:
        points_task = progress.add_task("points", total=len(points))
        for point in points:
            label = f"{point.scenario.name} [{point.key}]"
            if resume and point.spec_hash in completed_spec_hashes(results_dir, machine, point.scenario.name):
                summary.skipped.append(label)
                progress.advance(points_task)
                continue
            iterations_task = progress.add_task(label, total=point.scenario.repetitions.min_iterations)

            def report(done: int, target: int, task: int = iterations_task) -> None:
                progress.update(task, completed=min(done, target))

            try:
                result = run_point(point, gemm_peak_dir=results_dir / machine / "calibration", progress=report)
            except InputError as exc:  # found only once data or model exist: name the file and point
                where = f"sweep point {point.key}: " if point.values else ""
                raise InputError(f"{point.source_file}: {where}{exc}") from None
            path = write_result(result, results_dir, machine)
            summary.written.append(path)
            if on_written:
                on_written(path)
            progress.remove_task(iterations_task)
            progress.advance(points_task)
            del result
            gc.collect()  # release the point's model before the next one is built
    return summary


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
