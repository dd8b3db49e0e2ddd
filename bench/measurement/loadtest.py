"""Load test strategy: a scenario's `load:` section run under MLPerf LoadGen.

Warm-up and a few isolated batches calibrate the expected throughput, then one LoadGen run (server at
target_qps, offline, single_stream) or, for server with qps_range, a peak search: a bisection over bounded
LoadGen runs for the highest QPS whose run is VALID. The reported run's batches are the result's latency
samples; LoadGen's logs are kept in a folder next to the result file.
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from bench.core.kinds import LoadVerdict
from bench.hardware.environment import OtherProcessesCpu
from bench.load.logs import DETAIL_LOG, SUMMARY_LOG
from bench.load.run import LoadRun, PeakSearch, find_peak, first_token_stages, run_loadgen
from bench.loop.pipeline import BatchRecord, RecommendationLoop
from bench.measurement.prepare import busy_machine_warnings
from bench.measurement.strategy import MeasureContext, Measurement, ThroughputSource
from bench.results.model import LoadCalibration, LoadProbe, LoadSection, LoadSettings
from bench.results.reader import LOADGEN_DIR_SUFFIX
from bench.scenarios.spec import Load
from bench.trackers.energy import EnergyTracker
from bench.trackers.latency import LatencyTracker
from bench.trackers.memory import MemoryTracker

# Offline: LoadGen pre-generates expected_qps x min_duration samples; below the real throughput the run ends
# early and is INVALID for min duration, so the calibrated figure is raised by this factor.
OFFLINE_EXPECTED_QPS_MARGIN = 1.5
CALIBRATION_BATCHES = 3
MAX_LOG_FOLDERS = 1000


class LoadTest:
    def measure(self, context: MeasureContext) -> Measurement:
        scenario, prepared = context.point.scenario, context.prepared
        load = scenario.load
        if load is None:
            raise ValueError(f"LoadTest: scenario {scenario.name} has no load section")
        loop, device = prepared.loop, prepared.device
        log_root = unique_folder(context.machine_dir, context.log_stem, suffix=LOADGEN_DIR_SUFFIX)
        tdp = context.tier.tdp_watts if context.tier else None
        generating = scenario.scoring.mode == "generate"

        with (
            OtherProcessesCpu(pad=False) as others,
            MemoryTracker(device) as memory,
        ):  # LoadGen's threads are this process
            calibration = _calibrate(loop, load, warmup=scenario.repetitions.warmup)
            expected_qps = calibration.isolated_batch_throughput_qps * OFFLINE_EXPECTED_QPS_MARGIN

            def probe(qps: float | None, outdir: Path) -> LoadRun:
                latency = LatencyTracker(device)
                records: list[BatchRecord] = []
                target = _expected_queries(load, qps, expected_qps)
                stage = first_token_stages(latency.stage) if generating else latency.stage

                def process(users: list[int]) -> None:
                    mark = latency.mark()
                    try:
                        records.append(loop.run_batch(_users_tensor(users, device), stage))
                    except BaseException:
                        latency.roll_back(mark)  # the batcher drops this batch: its stages' timings go with it
                        raise
                    if context.progress:
                        context.progress(sum(r.users for r in records), target)

                with EnergyTracker(device, modelled_tdp_watts=tdp) as energy:
                    run = run_loadgen(
                        load,
                        process,
                        total_samples=loop.interactions.n_users,
                        outdir=outdir,
                        target_qps=qps,
                        expected_qps=expected_qps,
                        expected_latency_s=calibration.single_query_s,
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
                passing = [p for p in search.probes if p.verdict == LoadVerdict.VALID]
                reported = max(passing, key=lambda p: p.qps or 0.0) if passing else search.probes[0]
            else:
                reported = probe(load.target_qps if load.mode == "server" else None, log_root)

        if not reported.records:
            raise RuntimeError(f"load test of {scenario.name}: no batch was served (every query was dropped)")
        assert reported.latency is not None and reported.energy is not None
        section = _load_section(
            load, reported, search, calibration, expected_qps=expected_qps, machine_dir=context.machine_dir
        )
        return Measurement(
            records=reported.records,
            latency=reported.latency,
            latency_window="per batch inside the load test; batches are dynamic, of varying size",
            memory=memory.result(),
            memory_window="warm-up, calibration batches and the LoadGen run(s)",
            energy=reported.energy,
            energy_window="the reported LoadGen run (served requests only; dropped ones excluded)",
            # LoadGen's completed samples/s would count dropped queries as completed.
            throughput=ThroughputSource(
                requests_per_s=reported.stats.served / reported.wall_s,
                basis=f"load test ({load.mode}): served requests / LoadGen run wall time",
            ),
            load=section,
            warnings=busy_machine_warnings(others, during="the load test"),
        )


def unique_folder(parent: Path, stem: str, *, suffix: str) -> Path:
    """A new folder parent/<stem><suffix> (<stem>-1<suffix>, -2... when taken): two load tests started in the
    same second never share one, and every name still ends in `suffix`, which readers skip."""
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(MAX_LOG_FOLDERS):
        candidate = parent / (f"{stem}{suffix}" if attempt == 0 else f"{stem}-{attempt}{suffix}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"{parent}: no free folder name for {stem}{suffix}")


def _users_tensor(users: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(users, dtype=torch.long, device=device)


def _calibrate(loop: RecommendationLoop, load: Load, *, warmup: int) -> LoadCalibration:
    """Warm-up, then the median time of isolated batches: the expected throughput LoadGen is told about."""
    n_users = loop.interactions.n_users

    def batch_seconds(size: int, repeats: int) -> float:
        times = []
        for r in range(repeats):
            begin = time.perf_counter()
            users = [(r * size + i) % n_users for i in range(size)]
            loop.run_batch(_users_tensor(users, loop.device), _no_stage)
            times.append(time.perf_counter() - begin)
        return sorted(times)[len(times) // 2]

    for _ in range(warmup):
        loop.run_batch(_users_tensor(list(range(min(load.max_batch_size, n_users))), loop.device), _no_stage)
    full_batch_s = batch_seconds(load.max_batch_size, CALIBRATION_BATCHES)
    return LoadCalibration(
        max_batch_size_batch_s=full_batch_s,
        isolated_batch_throughput_qps=load.max_batch_size / full_batch_s,
        single_query_s=batch_seconds(1, CALIBRATION_BATCHES) if load.mode == "single_stream" else None,
    )


def _no_stage(name: str) -> AbstractContextManager[None]:
    return nullcontext()


def _expected_queries(load: Load, qps: float | None, expected_qps: float) -> int:
    rate = qps if load.mode == "server" and qps else expected_qps
    return max(load.min_query_count, math.ceil(rate * load.min_duration_s))


def _load_section(
    load: Load,
    run: LoadRun,
    search: PeakSearch | None,
    calibration: LoadCalibration,
    *,
    expected_qps: float,
    machine_dir: Path,
) -> LoadSection:
    joules = run.energy.joules if run.energy else None
    served = run.stats.served
    fields: dict[str, Any] = {
        **run.summary(),
        "mode": load.mode,
        "settings": LoadSettings(
            **load.model_dump(),
            performance_sample_count=run.log.get("effective_performance_sample_count"),
            offline_expected_qps=expected_qps if load.mode == "offline" else None,
            calibration=calibration,
        ),
        "log_dir": _relative(run.outdir, machine_dir),
        "logs": [DETAIL_LOG, SUMMARY_LOG],
        "energy_joules_per_request": joules / served if joules is not None and served else None,
        "energy_method": run.energy.method if run.energy else None,
    }
    if search is not None:
        fields["peak_qps"] = search.peak_qps
        fields["peak_bracket"] = search.bracket
        fields["probes"] = [
            LoadProbe(
                qps=p.qps,
                verdict=p.verdict,
                loadgen_validity=p.loadgen_validity,
                p99_s=p.p99_s,
                dropped=p.stats.dropped,
                served=p.stats.served,
                completed_samples_per_s=p.log.get("result_completed_samples_per_sec"),
                log_dir=_relative(p.outdir, machine_dir),
            )
            for p in search.probes
        ]
        fields["reported_probe_qps"] = run.qps
    return LoadSection(**fields)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
