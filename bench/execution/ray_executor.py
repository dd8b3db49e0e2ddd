"""Sweep points as Ray tasks (`recbench run --executor ray`): the `ray` extra (`pip install 'recbench[ray]'`).

Each point is one task in a fresh worker process (`max_calls=1`: no model, memory peak or CUDA state carries
over from another point), placed by the resources it asks for:
- a CUDA point asks for one GPU (`num_gpus=1`), of the type its scenario's `accelerator_type` names, if any;
- a CPU point asks for one unit of a custom resource (`bench_slot` by default) where the cluster declares it,
  e.g. `ray start --resources='{"bench_slot": 1}'` on each benchmark node; otherwise for every CPU of the
  smallest node, so two measurements never share a machine.
The worker measures the point and returns the result (with its LoadGen logs); the driver writes it with the
usual atomic store, in completion order. A worker or node that dies mid-point is retried by the driver, up to
`max_attempts` runs in all, and the result says how many it took; an error in the measurement itself (a bad
spec found at run time, out of memory) is not retried: it is reported for that point and the others go on.
Ctrl-C cancels the outstanding tasks and keeps every result already written.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from rich.progress import Progress

from bench.core.device import Device
from bench.core.errors import InputError
from bench.execution.executor import Deliver
from bench.execution.jobs import JobFunction, JobOutcome, PointJob, run_job
from bench.results.model import Execution

INSTALL_HINT = "--executor ray needs the ray extra: pip install 'recbench[ray]' (or make install-ray)"
DEFAULT_SLOT_RESOURCE = "bench_slot"
DEFAULT_MAX_ATTEMPTS = 3
MAX_ATTEMPTS_LIMIT = 20
WAIT_S = 0.5  # how often the driver wakes up to notice Ctrl-C while tasks run


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


class RayExecutor:
    name = "ray"
    on_this_machine = False  # the cluster picks the machine: each worker checks its own point

    def __init__(
        self,
        *,
        address: str | None = None,
        max_parallel: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        slot_resource: str = DEFAULT_SLOT_RESOURCE,
        job: JobFunction = run_job,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        """`address`: a cluster ("auto", "ray://HOST:PORT"), or None for a Ray started here; `job` is what a
        worker runs (tests inject faults through it); `init_options` go to ray.init for a local Ray."""
        if max_parallel is not None and max_parallel < 1:
            raise InputError(f"--max-parallel: must be at least 1, got {max_parallel}")
        if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise InputError(f"--max-attempts: must be in [1, {MAX_ATTEMPTS_LIMIT}], got {max_attempts}")
        self.ray = import_ray()
        self.address, self.max_parallel, self.max_attempts = address, max_parallel, max_attempts
        self.slot_resource, self.job, self.init_options = slot_resource, job, init_options or {}

    def run(self, jobs: Sequence[PointJob], *, deliver: Deliver, progress: Progress) -> None:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, log_to_driver=False, **self.init_options)
        remote = ray.remote(max_calls=1, max_retries=0)(self.job)  # retries are the driver's, counted below
        queue: collections.deque[PointJob] = collections.deque(jobs)
        pending: dict[Any, tuple[PointJob, int]] = {}
        try:
            while queue or pending:
                while queue and (self.max_parallel is None or len(pending) < self.max_parallel):
                    job = queue.popleft()
                    placement = self._placement(job)
                    if isinstance(placement, str):
                        deliver(job, JobOutcome(error=placement), None)
                        continue
                    pending[remote.options(**placement).remote(job)] = (job, 1)
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    job, attempt = pending.pop(ref)
                    outcome = self._collect(ref, job, attempt)
                    if outcome is None:  # the worker died: run the point again
                        pending[remote.options(**self._placement(job)).remote(job)] = (job, attempt + 1)
                        continue
                    execution = Execution(executor="ray", attempts=attempt, max_attempts=self.max_attempts,
                                          node=outcome.node)  # fmt: skip
                    deliver(job, outcome, execution)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _collect(self, ref: Any, job: PointJob, attempt: int) -> JobOutcome | None:
        """The job's outcome; None when its worker or node died and another attempt is allowed."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref)
        except exceptions.RayTaskError as exc:  # an unexpected error inside the job: retrying would repeat it
            return JobOutcome(error=f"{job.label}: failed on the worker: {exc.cause!r}")
        except exceptions.RayError as exc:  # the worker process or its node went away
            if attempt < self.max_attempts:
                return None
            return JobOutcome(error=f"{job.label}: its worker died {attempt} times ({type(exc).__name__})")

    def _placement(self, job: PointJob) -> dict[str, Any] | str:
        """Ray resources for the point, or why the cluster cannot run it."""
        resources = self.ray.cluster_resources()
        scenario = job.point.scenario
        if Device.parse(scenario.device).is_cuda:
            if resources.get("GPU", 0) < 1:
                return f"{job.label}: device {scenario.device}, but the Ray cluster has no GPU"
            placement: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
            if scenario.accelerator_type is not None:
                # Ray declares each node's GPU type as the resource accelerator_type:<TYPE>.
                if resources.get(f"accelerator_type:{scenario.accelerator_type}", 0) <= 0:
                    return f"{job.label}: accelerator_type {scenario.accelerator_type}: no such GPU in the Ray cluster"
                placement["accelerator_type"] = scenario.accelerator_type
            return placement
        if resources.get(self.slot_resource, 0) >= 1:
            return {"resources": {self.slot_resource: 1}, "num_cpus": 0}
        node_cpus = [node["Resources"].get("CPU", 0) for node in self.ray.nodes() if node.get("Alive")]
        return {"num_cpus": max(1, int(min(node_cpus, default=1)))}
