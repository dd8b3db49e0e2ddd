"""What an executor is: it runs point jobs and hands each outcome to `deliver` as it arrives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rich.progress import Progress

from bench.execution.jobs import JobOutcome, PointJob
from bench.results.model import Execution

Deliver = Callable[[PointJob, JobOutcome, Execution | None], None]


class Executor(Protocol):
    name: str
    on_this_machine: bool  # True: points run here, so the driver can check them against this machine first

    def run(self, jobs: Sequence[PointJob], *, deliver: Deliver, progress: Progress) -> None: ...
