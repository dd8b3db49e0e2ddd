"""Per-stage wall-clock timer for the benchmark's hot loop.

Usage::

    tracker = LatencyTracker(device)
    for batch in batches:
        with tracker.stage("encode"):
            ...
        with tracker.stage("score"):
            ...
    result = tracker.result()  # raw seconds per stage

On CPU a stage is two ``time.perf_counter`` reads and a list append. On CUDA a stage records a pair of
``torch.cuda.Event``s; with ``sync_each_stage=False`` the pairs are resolved only in ``result()``, so
timing adds no host/device synchronisation to the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

_perf_counter = time.perf_counter  # module-level binding: one global lookup instead of an attribute lookup


@dataclass
class LatencyResult:
    """Raw stage durations; summaries are computed by bench.core.stats, not here."""

    samples: dict[str, list[float]]  # stage name -> one duration per entry, in `unit`, in entry order
    method: str  # "perf_counter" or "cuda_event"
    unit: str = "s"
    sync_each_stage: bool = False  # CUDA only: whether each stage waited for its GPU work to finish
    device: str = "cpu"


class _CpuStage:
    """Reusable context manager for one stage name: entering/exiting allocates nothing but the sample."""

    __slots__ = ("_name", "_starts", "_tracker")

    def __init__(self, tracker: LatencyTracker, name: str) -> None:
        self._tracker = tracker
        self._name = name
        # A stack, not a single slot, so the same stage name can nest (e.g. recursive helpers).
        self._starts: list[float] = []

    def __enter__(self) -> None:
        self._starts.append(_perf_counter())

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        elapsed = _perf_counter() - self._starts.pop()
        self._tracker._append(self._name, elapsed)


class _CudaStage:
    """Records a start/end event pair on the device's current stream."""

    __slots__ = ("_name", "_starts", "_tracker")

    def __init__(self, tracker: LatencyTracker, name: str) -> None:
        self._tracker = tracker
        self._name = name
        self._starts: list[torch.cuda.Event] = []

    def __enter__(self) -> None:
        start = torch.cuda.Event(enable_timing=True)
        start.record(torch.cuda.current_stream(self._tracker.device))
        self._starts.append(start)

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        start = self._starts.pop()
        end = torch.cuda.Event(enable_timing=True)
        end.record(torch.cuda.current_stream(self._tracker.device))
        if self._tracker.sync_each_stage:
            # Waiting here keeps this stage's GPU work from bleeding into the next stage's host time.
            end.synchronize()
            self._tracker._append(self._name, start.elapsed_time(end) / 1000.0)
        else:
            self._tracker._pending.append((self._name, start, end))


class LatencyTracker:
    """Collects one raw duration (seconds) per stage entry."""

    def __init__(self, device: torch.device | str, sync_each_stage: bool | None = None) -> None:
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda and not torch.cuda.is_available():
            raise RuntimeError(f"LatencyTracker: device {self.device} requested but CUDA is not available")
        # Only meaningful on CUDA; CPU timing is always synchronous.
        self.sync_each_stage = (True if sync_each_stage is None else sync_each_stage) and self.is_cuda
        self.method = "cuda_event" if self.is_cuda else "perf_counter"
        self.samples: dict[str, list[float]] = {}
        self._pending: list[tuple[str, torch.cuda.Event, torch.cuda.Event]] = []
        self._stages: dict[str, _CpuStage | _CudaStage] = {}

    def stage(self, name: str) -> _CpuStage | _CudaStage:
        """Context manager timing one entry of stage `name`; the object is cached per name."""
        try:
            return self._stages[name]
        except KeyError:
            cls = _CudaStage if self.is_cuda else _CpuStage
            stage = self._stages[name] = cls(self, name)
            return stage

    def _append(self, name: str, seconds: float) -> None:
        try:
            self.samples[name].append(seconds)
        except KeyError:
            self.samples[name] = [seconds]

    def _resolve_pending(self) -> None:
        if not self._pending:
            return
        # One synchronize for all outstanding event pairs, instead of one per stage in the loop.
        torch.cuda.synchronize(self.device)
        for name, start, end in self._pending:
            self._append(name, start.elapsed_time(end) / 1000.0)
        self._pending.clear()

    def mark(self) -> tuple[dict[str, int], int]:
        """Where the samples stand now, to roll back to if what follows fails (a batch a load test drops)."""
        return {name: len(values) for name, values in self.samples.items()}, len(self._pending)

    def roll_back(self, mark: tuple[dict[str, int], int]) -> None:
        """Forget every sample recorded since `mark`: a failed batch leaves no partial timings behind."""
        counts, pending = mark
        for name in list(self.samples):
            del self.samples[name][counts.get(name, 0) :]
            if not self.samples[name]:
                del self.samples[name]
        del self._pending[pending:]

    def discard(self) -> None:
        """Drop every sample recorded so far (e.g. warm-up iterations); open stages still record on exit."""
        self.samples = {}
        self._pending = []

    def reset(self) -> None:
        """Return to the freshly constructed state, forgetting open stages too."""
        self.discard()
        self._stages = {}

    def result(self) -> LatencyResult:
        """Resolve outstanding CUDA events and return copies of the raw samples."""
        if self.is_cuda:
            self._resolve_pending()
        return LatencyResult(
            samples={name: list(values) for name, values in self.samples.items()},
            method=self.method,
            sync_each_stage=self.sync_each_stage,
            device=str(self.device),
        )
