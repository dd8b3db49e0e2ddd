"""Run a scenario point with a `load:` section as an MLPerf LoadGen load test.

Setup is run_point's (data, model, tokenizer, the loop, a FLOP-counting calibration batch, warm-up), then one
LoadGen run (server at target_qps, offline, single_stream) or, for server with qps_range, a peak search: a
bisection over bounded LoadGen runs for the highest QPS whose run is VALID. Queries reach the loop through a
dynamic Batcher. The result has run_point's layout plus a `load` key; LoadGen's own logs are kept in a folder
next to the result file.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
import torch

from bench.hardware.gemm_peak import cached_gemm_peak
from bench.hardware.tiers import Tier
from bench.load.batcher import Batcher, BatcherStats, ProcessFn, current_response_ids
from bench.load.logs import (
    DETAIL_LOG,
    SUMMARY_LOG,
    latency_percentiles_s,
    read_detail_log,
    time_per_output_token_s,
)
from bench.load.sut import LoadGenSUT, loadgen_complete, loadgen_first_token
from bench.loop.pipeline import BatchRecord
from bench.results.measures import throughput_figures
from bench.results.store import result_filename
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Load
from bench.trackers.energy import EnergyResult, EnergyTracker
from bench.trackers.latency import LatencyResult, LatencyTracker
from bench.trackers.memory import MemoryTracker
from bench.worker import (
    CPU_GEMM_SIDE,
    GPU_GEMM_SIDE,
    TORCH_DTYPES,
    ProgressCallback,
    assemble_result,
    prepare_point,
)

SCENARIOS = {
    "server": lg.TestScenario.Server,
    "offline": lg.TestScenario.Offline,
    "single_stream": lg.TestScenario.SingleStream,
}
# LoadGen's performance sample set: equal-issue runs make a full pass over it, so it is capped for short runs.
PERFORMANCE_SAMPLES_CAP = 128
# Offline: LoadGen pre-generates expected_qps x min_duration samples; below the real throughput the run ends
# early and is INVALID for min duration, so the calibrated figure is raised by this factor.
OFFLINE_EXPECTED_QPS_MARGIN = 1.5
CALIBRATION_BATCHES = 3
LOG_FOLDER_SUFFIX = "-loadgen"


@dataclass
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
    def verdict(self) -> str:
        """VALID only if LoadGen says so and nothing was dropped (a dropped query completes at once, so LoadGen
        alone would count it as fast) and the wall-time bound did not fire."""
        ok = self.loadgen_validity == "VALID" and self.stats.dropped == 0 and not self.timed_out
        return "VALID" if ok and self.batcher_error is None else "INVALID"

    @property
    def p99_s(self) -> float | None:
        value = self.log.get("result_99.00_percentile_latency_ns")
        return None if value is None else value / 1e9

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
            "latency_s": latency_percentiles_s(log),
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


PREFILL_STAGE = "llm_prefill"  # generate mode: the first token exists when this stage ends


def first_token_stages(stage: Callable[[str], AbstractContextManager]) -> Callable[[str], AbstractContextManager]:
    """Wrap a stage factory so that the end of the prefill reports the batch's first tokens to LoadGen."""

    @contextmanager
    def wrapped(name: str) -> Iterator[None]:
        with stage(name):
            yield
        if name == PREFILL_STAGE:
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
    # Nesting order matters: the batcher thread and the expiry timer may still be inside QuerySamplesComplete
    # when StartTest returns, so both are joined before the SUT and QSL are destroyed.
    with LoadGenSUT(batcher, total_samples=total_samples, performance_samples=performance_samples) as sut, batcher:
        timer.start()
        try:
            lg.StartTestWithLogSettings(sut.sut, sut.qsl, settings, log_settings)
        finally:
            timer.cancel()
            timer.join()
    wall = time.perf_counter() - started
    for leftover in ("mlperf_log_accuracy.json", "mlperf_log_trace.json"):
        (outdir / leftover).unlink(missing_ok=True)
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
    if probes[-1].verdict != "VALID":
        return PeakSearch(None, probes, (0.0, low))
    probes.append(probe(high))
    if probes[-1].verdict == "VALID":
        return PeakSearch(high, probes, (high, high))
    good, bad = low, high
    while (bad - good) / bad >= tolerance and len(probes) < max_probes:
        mid = (good + bad) / 2
        probes.append(probe(mid))
        if probes[-1].verdict == "VALID":
            good = mid
        else:
            bad = mid
    return PeakSearch(good, probes, (good, bad))


def run_load_point(
    point: ScenarioPoint,
    *,
    results_dir: Path,
    machine: str,
    tier: Tier | None = None,
    progress: ProgressCallback | None = None,
) -> dict:
    """Measure one point with a `load:` section; returns run_point's result layout plus `load`."""
    scenario = point.scenario
    load = scenario.load
    if load is None:
        raise ValueError(f"run_load_point: scenario {scenario.name} has no load section")
    when = datetime.now(timezone.utc)
    stem = result_filename(scenario.name, point.key, when).removesuffix(".json")
    log_root = results_dir / machine / f"{stem}{LOG_FOLDER_SUFFIX}"
    prepared = prepare_point(point)
    device, loop, dtype_name = prepared.device, prepared.loop, prepared.dtype
    n_users = prepared.interactions.n_users

    def users_tensor(users: list[int]) -> torch.Tensor:
        return torch.tensor(users, dtype=torch.long, device=device)

    def batch_seconds(size: int, repeats: int) -> float:
        """Median wall time of `repeats` isolated batches of `size` users (after the warm-up)."""
        times = []
        for r in range(repeats):
            begin = time.perf_counter()
            loop.run_batch(users_tensor([(r * size + i) % n_users for i in range(size)]), _no_stage)
            times.append(time.perf_counter() - begin)
        return sorted(times)[len(times) // 2]

    with MemoryTracker(device) as memory:
        for _ in range(scenario.repetitions.warmup):
            loop.run_batch(users_tensor(list(range(min(load.max_batch_size, n_users)))), _no_stage)
        full_batch_s = batch_seconds(load.max_batch_size, CALIBRATION_BATCHES)
        single_s = batch_seconds(1, CALIBRATION_BATCHES) if load.mode == "single_stream" else None
        calibrated = {
            "max_batch_size_batch_s": full_batch_s,
            "isolated_batch_throughput_qps": load.max_batch_size / full_batch_s,
        }
        expected_qps = calibrated["isolated_batch_throughput_qps"] * OFFLINE_EXPECTED_QPS_MARGIN
        if single_s is not None:
            calibrated["single_query_s"] = single_s

        generating = scenario.scoring.mode == "generate"

        def probe(qps: float | None, outdir: Path) -> LoadRun:
            latency = LatencyTracker(device)
            records: list[BatchRecord] = []
            target = _expected_queries(load, qps, expected_qps)

            stage = first_token_stages(latency.stage) if generating else latency.stage

            def process(users: list[int]) -> None:
                records.append(loop.run_batch(users_tensor(users), stage))
                if progress:
                    progress(sum(r.users for r in records), target)

            with EnergyTracker(device, modelled_tdp_watts=tier.tdp_watts if tier else None) as energy:
                run = run_loadgen(
                    load,
                    process,
                    total_samples=n_users,
                    outdir=outdir,
                    target_qps=qps,
                    expected_qps=expected_qps,
                    expected_latency_s=single_s,
                    tokens_per_query=scenario.scoring.new_tokens if generating else None,
                )
            run.records, run.latency, run.energy = records, latency.result(), energy.result()
            return run

        search: PeakSearch | None = None
        if load.mode == "server" and load.qps_range is not None:
            low, high = load.qps_range
            counter = iter(range(1, 1000))
            search = find_peak(
                lambda qps: probe(qps, log_root / f"probe-{next(counter):02d}-qps={qps:.4g}"),
                low,
                high,
                tolerance=load.peak_tolerance,
            )
            passing = [p for p in search.probes if p.verdict == "VALID"]
            reported = max(passing, key=lambda p: p.qps or 0.0) if passing else search.probes[0]
        else:
            reported = probe(load.target_qps if load.mode == "server" else None, log_root)

    if not reported.records:
        raise RuntimeError(f"load test of {scenario.name}: no batch was served (every query was dropped)")
    gemm_side = GPU_GEMM_SIDE if device.type == "cuda" else CPU_GEMM_SIDE
    peak = cached_gemm_peak(device, TORCH_DTYPES[dtype_name], results_dir / machine / "calibration", n=gemm_side)
    assert reported.latency is not None and reported.energy is not None
    result = assemble_result(
        point=point,
        dtype=dtype_name,
        notes=prepared.notes,
        loaded=prepared.loaded,
        interactions=prepared.interactions,
        setup=prepared.setup,
        calibration=prepared.calibration,
        flop_result=prepared.flops,
        latency_result=reported.latency,
        memory_result=memory.result(),
        setup_memory_result=prepared.setup_memory,
        energy_result=reported.energy,
        tier=tier,
        records=reported.records,
        gemm_peak=peak,
        wall_s=time.perf_counter() - prepared.started,
    )
    result["created_at"] = when.isoformat()  # the log folder's name was derived from it
    result["latency"]["method"] += " (per batch inside the load test; batches are dynamic, of varying size)"
    result["latency"]["warmup_iterations"] = scenario.repetitions.warmup
    result["memory"]["measured_window"] = "warm-up, calibration batches and the LoadGen run(s)"
    result["energy"]["window"] = "the reported LoadGen run (served requests only; dropped ones excluded)"
    result["summary"]["throughput"] = _load_throughput(result, reported)
    result["load"] = _load_section(load, reported, search, calibrated, expected_qps, results_dir / machine)
    return result


def _no_stage(name: str) -> AbstractContextManager[None]:
    return nullcontext()


def _expected_queries(load: Load, qps: float | None, expected_qps: float) -> int:
    rate = qps if load.mode == "server" and qps else expected_qps
    return max(load.min_query_count, math.ceil(rate * load.min_duration_s))


def _load_throughput(result: dict[str, Any], run: LoadRun) -> dict[str, Any]:
    """Throughput as the load test measured it: served requests over the LoadGen run's wall time (LoadGen's
    completed samples/s would count dropped queries as completed)."""
    requests_per_s = run.stats.served / run.wall_s
    mode = result["scenario"]["load"]["mode"]
    return throughput_figures(
        result, requests_per_s, basis=f"load test ({mode}): served requests / LoadGen run wall time"
    )


def _load_section(
    load: Load,
    run: LoadRun,
    search: PeakSearch | None,
    calibrated: dict[str, float],
    expected_qps: float,
    machine_dir: Path,
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "mode": load.mode,
        "settings": {
            **load.model_dump(mode="json"),
            "performance_sample_count": None,  # filled below from the log
            "offline_expected_qps": expected_qps if load.mode == "offline" else None,
            "calibration": calibrated,
        },
        **run.summary(),
    }
    section["settings"]["performance_sample_count"] = run.log.get("effective_performance_sample_count")
    section["log_dir"] = _relative(run.outdir, machine_dir)
    joules = run.energy.joules if run.energy else None
    served = run.stats.served
    section["energy_joules_per_request"] = joules / served if joules is not None and served else None
    section["energy_method"] = run.energy.method if run.energy else None
    section["logs"] = [DETAIL_LOG, SUMMARY_LOG]
    if search is not None:
        section["peak_qps"] = search.peak_qps
        section["peak_bracket"] = list(search.bracket)
        section["probes"] = [
            {
                "qps": p.qps,
                "verdict": p.verdict,
                "loadgen_validity": p.loadgen_validity,
                "p99_s": p.p99_s,
                "dropped": p.stats.dropped,
                "served": p.stats.served,
                "completed_samples_per_s": p.log.get("result_completed_samples_per_sec"),
                "log_dir": _relative(p.outdir, machine_dir),
            }
            for p in search.probes
        ]
        section["reported_probe_qps"] = run.qps
    return section


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
