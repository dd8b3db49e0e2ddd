"""Peak-memory tracker: process RSS sampled by a background thread, plus CUDA allocator peaks.

Usage::

    with MemoryTracker(device) as mem:
        run_workload()
    result = mem.result()  # raw RSS samples in bytes

A thread (not a subprocess) is used because reading /proc/self/statm through psutil is ~10 µs and a
thread shares the process's view of itself; torch kernels release the GIL, so the sampler keeps running
while the workload computes.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import dataclass

import psutil
import torch

# Retained points are capped so an hour-long run does not itself grow RSS by tens of MB of Python ints.
MAX_POINTS = 2000


@dataclass(kw_only=True)
class MemoryResult:
    """Raw memory observations over one tracked window."""

    rss_baseline: int  # RSS when the window opened
    rss_peak: int  # max over all samples, including one taken when the window closed
    rss_samples: list[int]  # downsampled (max per bucket) to at most ~MAX_POINTS points
    sample_interval_s: float  # nominal time between retained points (requested interval × bucket size)
    requested_interval_s: float
    n_raw_samples: int  # samples actually taken, before downsampling
    duration_s: float  # wall-clock length of the window
    ru_maxrss_bytes: int  # getrusage high-water mark for the whole process lifetime (cross-check)
    # RSS less its file-backed and shared pages (Linux statm: resident - shared): anonymous memory. The
    # file-backed part depends on the page cache: importing the same modules from a fresh venv mapped 60 MiB more
    # of the libraries (measured 2026-11-29). Weights memory-mapped from a checkpoint are file-backed too, so they
    # are not in it. None where the OS does not report shared pages.
    anon_baseline: int | None = None
    anon_peak: int | None = None
    cuda_peak_allocated: int | None  # torch.cuda.max_memory_allocated over the window; None on CPU
    cuda_peak_reserved: int | None  # torch.cuda.max_memory_reserved over the window; None on CPU
    unit: str = "bytes"


class _MaxBuckets:
    """Keeps at most 2 × max_points values by merging neighbours with max and doubling the bucket size.

    Merging on the fly (rather than downsampling at the end) bounds memory during long runs and keeps
    every peak: each retained point is the max of the raw samples in its bucket.
    """

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self.points: list[int] = []
        self.bucket = 1  # raw samples per retained point
        self._fill = 0  # raw samples folded into the last point so far
        self.n_raw = 0

    def add(self, value: int) -> None:
        self.n_raw += 1
        if self._fill and self._fill < self.bucket:
            self.points[-1] = max(self.points[-1], value)
            self._fill += 1
        else:
            self.points.append(value)
            self._fill = 1
        # Only halve once the last bucket is full, so every merged pair covers 2 × bucket raw samples.
        if len(self.points) >= 2 * self.max_points and self._fill == self.bucket:
            self._halve()

    def _halve(self) -> None:
        pts = self.points
        self.points = [max(pts[i : i + 2]) for i in range(0, len(pts), 2)]
        self.bucket *= 2
        self._fill = self.bucket  # len was exactly 2 × max_points of full buckets, so all pairs are full

    def finish(self) -> list[int]:
        """Final points, merged once more if needed so the count is at most ~max_points."""
        pts = self.points
        if len(pts) > self.max_points:
            factor = -(-len(pts) // self.max_points)  # ceil
            pts = [max(pts[i : i + factor]) for i in range(0, len(pts), factor)]
            self.bucket *= factor
        return pts


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class MemoryTracker:
    """Context manager measuring RSS (and CUDA allocator) peaks over its window."""

    def __init__(self, device: torch.device | str, interval_s: float = 0.005) -> None:
        if interval_s <= 0:
            raise ValueError(f"MemoryTracker: interval_s must be positive, got {interval_s}")
        self.device = torch.device(device)
        self.is_cuda = self.device.type == "cuda"
        if self.is_cuda and not torch.cuda.is_available():
            raise RuntimeError(f"MemoryTracker: device {self.device} requested but CUDA is not available")
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buckets = _MaxBuckets(MAX_POINTS)
        self._baseline = 0
        self._anon_baseline: int | None = None
        self._anon_peak: int | None = None
        self._t0 = 0.0
        self._result: MemoryResult | None = None
        self._sampler_error: BaseException | None = None

    def _reading(self) -> tuple[int, int | None]:
        """RSS, and its anonymous part (None where the OS reports no shared pages), from one reading."""
        info = self._process.memory_info()
        shared = getattr(info, "shared", None)
        return int(info.rss), None if shared is None else int(info.rss - shared)

    def _rss(self) -> int:
        """One sample: its RSS for the series (returned), its anonymous part into the running peak."""
        rss, anon = self._reading()
        if anon is not None:
            self._anon_peak = anon if self._anon_peak is None else max(self._anon_peak, anon)
        return rss

    def _sample_loop(self) -> None:
        try:
            # Event.wait doubles as the sleep, so stopping takes at most one interval.
            while not self._stop.wait(self.interval_s):
                self._buckets.add(self._rss())
        except BaseException as exc:  # surfaced in __exit__ rather than dying silently in the thread
            self._sampler_error = exc

    def __enter__(self) -> MemoryTracker:
        self._result = None
        self._sampler_error = None
        self._buckets = _MaxBuckets(MAX_POINTS)
        self._stop.clear()
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._baseline, self._anon_baseline = self._reading()
        self._anon_peak = self._anon_baseline
        self._buckets.add(self._baseline)
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._sample_loop, name="recbench-memory-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *details: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        duration = time.perf_counter() - self._t0
        self._buckets.add(self._rss())  # the closing sample: short windows may have no thread samples
        cuda_alloc = cuda_reserved = None
        if self.is_cuda:
            torch.cuda.synchronize(self.device)  # queued frees/allocations must land before reading peaks
            cuda_alloc = int(torch.cuda.max_memory_allocated(self.device))
            cuda_reserved = int(torch.cuda.max_memory_reserved(self.device))
        points = self._buckets.finish()
        self._result = MemoryResult(
            rss_baseline=self._baseline,
            rss_peak=max(points),
            rss_samples=points,
            sample_interval_s=self.interval_s * self._buckets.bucket,
            requested_interval_s=self.interval_s,
            n_raw_samples=self._buckets.n_raw,
            duration_s=duration,
            ru_maxrss_bytes=_ru_maxrss_bytes(),
            anon_baseline=self._anon_baseline,
            anon_peak=self._anon_peak,
            cuda_peak_allocated=cuda_alloc,
            cuda_peak_reserved=cuda_reserved,
        )
        if self._sampler_error is not None and exc_type is None:
            raise RuntimeError("MemoryTracker: the RSS sampler thread failed") from self._sampler_error

    def result(self) -> MemoryResult:
        """The finished window's observations; only valid after the `with` block has exited."""
        if self._result is None:
            raise RuntimeError("MemoryTracker.result() called before the tracked window closed")
        return self._result
