"""What a measurement strategy is given and what it hands back. A strategy decides how batches reach the
loop (back to back, or on LoadGen's schedule) and which windows the trackers cover; set-up before it and the
assembly of the result after it are the same for every strategy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.hardware.tiers import Tier
from bench.loop.pipeline import BatchRecord
from bench.measurement.prepare import PreparedPoint
from bench.results.model import LoadSection, ResultWarning
from bench.scenarios.loader import ScenarioPoint
from bench.trackers.energy import EnergyResult
from bench.trackers.latency import LatencyResult
from bench.trackers.memory import MemoryResult

ProgressCallback = Callable[[int, int], None]  # (measured so far, target): batches, or queries in a load test


@dataclass(frozen=True)
class ThroughputSource:
    """Requests per second as a strategy measured it directly (a load test), with how."""

    requests_per_s: float
    basis: str


@dataclass(kw_only=True)
class MeasureContext:
    point: ScenarioPoint
    prepared: PreparedPoint
    tier: Tier | None  # this machine's catalogue tier: its TDP drives modelled energy where no meter exists
    machine_dir: Path  # results/<machine>: where a load test keeps LoadGen's logs
    log_stem: str  # the result file's stem, which names a load test's log folder
    progress: ProgressCallback | None = None


@dataclass(kw_only=True)
class Measurement:
    """Raw tracker output over the measured window(s), and the batches that ran in them."""

    records: list[BatchRecord]
    latency: LatencyResult
    latency_window: str
    memory: MemoryResult
    memory_window: str
    energy: EnergyResult
    energy_window: str
    throughput: ThroughputSource | None = None  # None: batch_size / median end-to-end batch latency
    load: LoadSection | None = None
    warnings: list[ResultWarning] = field(default_factory=list)  # found while measuring (a busy machine)


class Strategy(Protocol):
    def measure(self, context: MeasureContext) -> Measurement: ...
