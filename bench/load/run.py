"""One bounded MLPerf LoadGen run around the recommendation loop, and the bisection that searches for the
highest QPS whose run is VALID. Queries reach `process(users)` through a dynamic Batcher; LoadGen's own logs are
left in the run's folder. The measurement strategy that turns a scenario's `load:` section into a result is
bench.measurement.loadtest."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlperf_loadgen as lg
import numpy as np

from bench.core.interrupts import deferred_interrupts
from bench.core.kinds import LoadVerdict
from bench.core.stages import Stage
from bench.load.batcher import Batcher, BatcherStats, ProcessFn, current_response_ids
from bench.load.logs import latency_percentiles_s, read_detail_log, time_per_output_token_s
from bench.load.sut import LoadGenSUT, loadgen_complete, loadgen_first_token
from bench.scenarios.spec import Load

if TYPE_CHECKING:  # a LoadGen run itself needs neither torch nor the model
    from bench.loop.pipeline import BatchRecord
    from bench.trackers.energy import EnergyResult
    from bench.trackers.latency import LatencyResult

SCENARIOS = {
    "server": lg.TestScenario.Server,
    "offline": lg.TestScenario.Offline,
    "single_stream": lg.TestScenario.SingleStream,
}
# LoadGen's performance sample set: equal-issue runs make a full pass over it, so it is capped for short runs.
PERFORMANCE_SAMPLES_CAP = 128


@dataclass(kw_only=True)
class LoadRun:
    """One bounded LoadGen run and what the batcher saw during it."""

    qps: float | None  # server: the target; else None
    outdir: Path
    log: dict[str, Any]
    stats: BatcherStats
    wall_s: float
    timed_out: bool  # the wall-time bound fired and dropped what was left
    batcher_error: str | None = None
    records: list[BatchRecord] = field(default_factory=list)
    latency: LatencyResult | None = None
    energy: EnergyResult | None = None

    @property
    def loadgen_validity(self) -> str:
        return str(self.log.get("result_validity", "INVALID"))

    @property
    def verdict(self) -> LoadVerdict:
        """VALID only if LoadGen says so and nothing was dropped (a dropped query completes at once, so LoadGen
        alone would count it as fast) and the wall-time bound did not fire."""
        ok = self.loadgen_validity == "VALID" and self.stats.dropped == 0 and not self.timed_out
        return LoadVerdict.VALID if ok and self.batcher_error is None else LoadVerdict.INVALID

    @property
    def p99_s(self) -> float | None:
        """p99 of the served queries (dropped ones, completed at once, are not latencies)."""
        return served_percentiles_s(self.stats.served_latencies_s).get("p99")

    @staticmethod
    def _token_latencies(log: dict[str, Any]) -> dict[str, Any]:
        """Time to first token and per output token, from a token-latency (generate scoring) run."""
        if not log.get("requested_use_token_latencies"):
            return {}
        return {
            "time_to_first_token_s": latency_percentiles_s(log, "first_token_"),
            "time_per_output_token_s": time_per_output_token_s(log),
            "completed_tokens_per_s": log.get("result_completed_tokens_per_second"),
        }

    def summary(self) -> dict[str, Any]:
        log = self.log
        completed = log.get("result_completed_samples_per_sec", log.get("result_samples_per_second"))
        served_per_s = self.stats.served / self.wall_s if self.wall_s > 0 else None
        return {
            "target_qps": self.qps,
            "verdict": self.verdict,
            "loadgen_validity": self.loadgen_validity,
            "invalid_reason": log.get("result_invalid_reason"),
            "perf_constraints_met": log.get("result_perf_constraints_met"),
            "min_duration_met": log.get("result_min_duration_met"),
            "min_queries_met": log.get("result_min_queries_met"),
            "early_stopping_met": log.get("early_stopping_met"),
            "early_stopping_result": log.get("early_stopping_result"),
            "completed_samples_per_s": completed,
            "scheduled_samples_per_s": log.get("result_scheduled_samples_per_sec"),
            "served_requests_per_s": served_per_s,
            "latency_s": served_percentiles_s(self.stats.served_latencies_s),
            "query_latency_samples_s": list(self.stats.served_latencies_s),
            "loadgen_latency_s": latency_percentiles_s(log),
            **self._token_latencies(log),
            "queries": self.stats.submitted,
            "served": self.stats.served,
            "dropped": self.stats.dropped,
            "overlatency_queries": log.get("result_overlatency_query_count"),
            "batches": len(self.stats.batch_sizes),
            "batch_size_mean": (
                sum(self.stats.batch_sizes) / len(self.stats.batch_sizes) if self.stats.batch_sizes else None
            ),
            "timed_out": self.timed_out,
            "batcher_error": self.batcher_error,
            "wall_s": self.wall_s,
            "loadgen_errors": log.get("errors", []),
            "loadgen_warnings": log.get("warnings", []),
            "log_dir": str(self.outdir),
        }


def served_percentiles_s(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9, mean, min and max of served queries' latencies (empty when none was served)."""
    if not samples:
        return {}
    values = np.asarray(samples, dtype=np.float64)
    figures = {f"p{q:g}": float(np.percentile(values, q)) for q in (50, 90, 99, 99.9)}
    return {**figures, "mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def loadgen_settings(
    load: Load,
    *,
    performance_samples: int,
    target_qps: float | None = None,
    expected_qps: float | None = None,
    expected_latency_s: float | None = None,
) -> lg.TestSettings:
    """LoadGen settings for one run of `load` (target_qps overrides load.target_qps, for peak-search probes)."""
    settings = lg.TestSettings()
    settings.scenario = SCENARIOS[load.mode]
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(load.min_duration_s * 1000)
    # LoadGen stops issuing here; the batcher's expiry (same bound) drops whatever is still queued.
    settings.max_duration_ms = int(load.max_wall_s * 1000)
    settings.min_query_count = load.min_query_count
    settings.performance_sample_count_override = performance_samples
    if load.mode == "server":
        qps = target_qps if target_qps is not None else load.target_qps
        if qps is None:
            raise ValueError("server mode needs a target QPS")
        settings.server_target_qps = qps
        settings.server_target_latency_ns = int(load.p99_slo_ms * 1e6)
        settings.server_target_latency_percentile = 0.99
    elif load.mode == "offline":
        if expected_qps is None:
            raise ValueError("offline mode needs expected_qps (a calibrated throughput)")
        settings.offline_expected_qps = expected_qps
    elif expected_latency_s is not None:
        settings.single_stream_expected_latency_ns = max(1, int(expected_latency_s * 1e9))
    return settings


def first_token_stages(stage: Callable[[str], AbstractContextManager]) -> Callable[[str], AbstractContextManager]:
    """Wrap a stage factory so that the end of the prefill reports the batch's first tokens to LoadGen."""

    @contextmanager
    def wrapped(name: str) -> Iterator[None]:
        with stage(name):
            yield
        if name == Stage.LLM_PREFILL:  # generate scoring: the first token exists when the prefill ends
            loadgen_first_token(current_response_ids())

    return wrapped


def run_loadgen(
    load: Load,
    process: ProcessFn,
    *,
    total_samples: int,
    outdir: Path,
    target_qps: float | None = None,
    expected_qps: float | None = None,
    expected_latency_s: float | None = None,
    tokens_per_query: int | None = None,
) -> LoadRun:
    """One LoadGen run with a Batcher around `process`, bounded by load.max_wall_s. Leaves
    mlperf_log_summary.txt and mlperf_log_detail.txt in `outdir`. With `tokens_per_query` (generate scoring),
    LoadGen runs in token-latency mode: `process` reports first tokens (first_token_stages) and each response
    carries its token count, so LoadGen measures time to first token and time per output token."""
    outdir.mkdir(parents=True, exist_ok=True)
    performance_samples = min(total_samples, PERFORMANCE_SAMPLES_CAP)
    settings = loadgen_settings(
        load,
        performance_samples=performance_samples,
        target_qps=target_qps,
        expected_qps=expected_qps,
        expected_latency_s=expected_latency_s,
    )
    if tokens_per_query is not None:
        settings.use_token_latencies = True
        settings.ttft_latency = int(load.ttft_p99_ms * 1e6)
        settings.tpot_latency = int(load.tpot_p99_ms * 1e6)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    batcher = Batcher(
        process,
        functools.partial(loadgen_complete, n_tokens=tokens_per_query),
        max_batch_size=load.max_batch_size,
        max_wait_s=load.max_wait_ms / 1000,
        # Offline issues every sample in one query: bounding the queue would drop most of them.
        max_outstanding=None if load.mode == "offline" else load.max_outstanding,
    )
    timer = threading.Timer(load.max_wall_s, batcher.expire)
    timer.daemon = True
    started = time.perf_counter()
    batcher_and_sut = _sut_around(batcher, total_samples=total_samples, performance_samples=performance_samples)
    # Ctrl-C must not unwind through LoadGen: it drops what is queued and LoadGen ends its run on its own.
    stopping = "dropping the load test's queries; LoadGen ends its run within its schedule"
    try:
        with deferred_interrupts(batcher.expire, stopping=stopping), batcher_and_sut as (sut, _):
            timer.start()
            try:
                lg.StartTestWithLogSettings(sut.sut, sut.qsl, settings, log_settings)
            finally:
                timer.cancel()
                timer.join()
    finally:
        for leftover in ("mlperf_log_accuracy.json", "mlperf_log_trace.json"):
            (outdir / leftover).unlink(missing_ok=True)
    wall = time.perf_counter() - started
    error = batcher.error
    return LoadRun(
        qps=settings.server_target_qps if load.mode == "server" else None,
        outdir=outdir,
        log=read_detail_log(outdir),
        stats=batcher.stats,
        wall_s=wall,
        timed_out=batcher.expired,
        batcher_error=None if error is None else f"{type(error).__name__}: {error}",
    )


@contextmanager
def _sut_around(
    batcher: Batcher, *, total_samples: int, performance_samples: int
) -> Iterator[tuple[LoadGenSUT, Batcher]]:
    """Nesting order matters: the batcher thread and the expiry timer may still be inside QuerySamplesComplete
    when StartTest returns, so the batcher (inside) is joined before the SUT and QSL handles (outside) are
    destroyed."""
    with LoadGenSUT(batcher, total_samples=total_samples, performance_samples=performance_samples) as sut, batcher:
        yield sut, batcher


@dataclass
class PeakSearch:
    peak_qps: float | None  # highest VALID probe; None if even qps_range's low end failed
    probes: list[LoadRun]
    bracket: tuple[float, float]  # (highest VALID, lowest INVALID) when the search stopped


def find_peak(
    probe: Callable[[float], LoadRun], low: float, high: float, *, tolerance: float, max_probes: int = 12
) -> PeakSearch:
    """Bisection for the highest QPS whose run is VALID: the low end first (if it fails there is no peak in
    range), then the high end (if it passes, it is the peak), then halve until (bad - good) / bad < tolerance."""
    probes = [probe(low)]
    if probes[-1].verdict != LoadVerdict.VALID:
        return PeakSearch(None, probes, (0.0, low))
    probes.append(probe(high))
    if probes[-1].verdict == LoadVerdict.VALID:
        return PeakSearch(high, probes, (high, high))
    good, bad = low, high
    while (bad - good) / bad >= tolerance and len(probes) < max_probes:
        mid = (good + bad) / 2
        probes.append(probe(mid))
        if probes[-1].verdict == LoadVerdict.VALID:
            good = mid
        else:
            bad = mid
    return PeakSearch(good, probes, (good, bad))
