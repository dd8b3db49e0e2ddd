"""The default executor: every point in this process, one after the other, each result written before the next
point starts; the first error stops the sweep (results already written are kept)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.progress import Progress

from bench.core.interrupts import raise_if_stopped
from bench.execution.executor import Deliver
from bench.execution.jobs import JobOutcome, PointJob, measure_job, release_point_memory


class LocalExecutor:
    name = "local"
    on_this_machine = True  # points are checked against this machine before anything runs

    def __init__(self, machine_dir: Path) -> None:
        self.machine_dir = machine_dir  # results/<machine>: this machine's GEMM-peak cache and LoadGen logs

    def run(self, jobs: Sequence[PointJob], *, deliver: Deliver, progress: Progress) -> None:
        for job in jobs:
            raise_if_stopped()
            task = progress.add_task(job.label, total=job.point.scenario.repetitions.min_iterations)

            def report(done: int, target: int, task: int = task) -> None:
                progress.update(task, completed=min(done, target), total=target)  # load runs report queries

            result = measure_job(job, self.machine_dir, report)
            deliver(job, JobOutcome(result=result), None)
            progress.remove_task(task)
            del result
            release_point_memory()
