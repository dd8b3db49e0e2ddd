# ruff: noqa: E501 (the inline detail-log snippet keeps LoadGen's real, long lines)
"""Load tests driven by MLPerf LoadGen: the dynamic batcher, log parsing, server/overload runs of a tiny model,
a peak search on a stand-in system of known capacity, and validation of the scenario's load section."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.core.errors import InputError
from bench.core.kinds import WarningKind
from bench.core.stages import Stage
from bench.load.batcher import Batcher
from bench.load.logs import latency_percentiles_s, parse_detail_log
from bench.load.run import find_peak, run_loadgen
from bench.measurement.point import run_point
from bench.scenarios.loader import expand_points
from bench.scenarios.spec import Load, Scenario
from tests.conftest import tiny_scenario_dict

# Captured from a real run here: tiny scenario, server mode at 60 QPS for 8 s (LoadGen 6.0.17), key lines only.
DETAIL_SNIPPET = r"""
:::MLLOG {"key": "loadgen_version", "value": "6.0.17 @ d6147c7eb7", "time_ms": 0.007741, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "version.cc", "line_no": 53, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "effective_scenario", "value": "Server", "time_ms": 0.094351, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "test_settings_internal.cc", "line_no": 428, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "effective_target_qps", "value": 60, "time_ms": 0.094351, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "test_settings_internal.cc", "line_no": 432, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "effective_target_latency_ns", "value": 500000000, "time_ms": 0.094351, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "test_settings_internal.cc", "line_no": 433, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "effective_performance_sample_count", "value": 16, "time_ms": 0.094351, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "test_settings_internal.cc", "line_no": 461, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_validity", "value": "VALID", "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 674, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_perf_constraints_met", "value": true, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 677, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_min_duration_met", "value": true, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 679, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_min_queries_met", "value": true, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 680, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "early_stopping_met", "value": true, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 681, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "early_stopping_result", "value": " * Run successful.", "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 700, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_query_count", "value": 480, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 712, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_overlatency_query_count", "value": 0, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 714, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_scheduled_samples_per_sec", "value": 59.851, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 760, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_completed_samples_per_sec", "value": 59.8301, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 763, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_mean_latency_ns", "value": 9976972, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 776, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_50.00_percentile_latency_ns", "value": 9266057, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 778, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_90.00_percentile_latency_ns", "value": 13137792, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 778, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_99.00_percentile_latency_ns", "value": 16975776, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 778, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "result_99.90_percentile_latency_ns", "value": 18647832, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 778, "pid": 22664, "tid": 22664}}
:::MLLOG {"key": "num_errors", "value": 0, "time_ms": 8006.915511, "namespace": "mlperf::logging", "event_type": "POINT_IN_TIME", "metadata": {"is_error": false, "is_warning": false, "file": "results.cc", "line_no": 852, "pid": 22664, "tid": 22664}}
"""


class Completions:
    """A stand-in for LoadGen's QuerySamplesComplete: records (ids, served) calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], bool]] = []
        self.lock = threading.Lock()

    def __call__(self, ids, served: bool) -> None:
        with self.lock:
            self.calls.append((list(ids), served))

    def ids(self, served: bool) -> list[int]:
        with self.lock:
            return [i for ids, ok in self.calls if ok == served for i in ids]


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out waiting"
        time.sleep(0.002)


# ----------------------------------------------------------------------------------------------- batcher


def test_batcher_fills_batches_up_to_max_batch_size() -> None:
    sizes: list[int] = []
    done = Completions()
    with Batcher(lambda users: sizes.append(len(users)), done, max_batch_size=8, max_wait_s=5.0) as batcher:
        batcher.submit((user, 100 + user) for user in range(20))
        wait_for(lambda: len(done.ids(True)) >= 16, timeout=2.0)  # well before max_wait
        assert sizes == [8, 8]
        assert batcher.queued == 4
    # stop() serves what is left without waiting out max_wait
    assert sizes == [8, 8, 4]
    assert sorted(done.ids(True)) == list(range(100, 120))
    assert batcher.stats.served == 20 and batcher.stats.dropped == 0


def test_batcher_dispatches_a_partial_batch_after_max_wait() -> None:
    dispatched: list[tuple[float, list[int]]] = []
    done = Completions()
    with Batcher(
        lambda users: dispatched.append((time.perf_counter(), users)), done, max_batch_size=8, max_wait_s=0.1
    ) as batcher:
        submitted = time.perf_counter()
        batcher.submit([(3, 30), (5, 50), (7, 70)])
        wait_for(lambda: len(dispatched) == 1, timeout=30.0)  # generous: the suite must pass on a busy machine
        waited = dispatched[0][0] - submitted
        assert dispatched[0][1] == [3, 5, 7]
        assert waited >= 0.09  # it waited for more queries first (how much longer depends on the machine's load)
        assert done.calls == [([30, 50, 70], True)]


def test_batcher_drops_beyond_max_outstanding_and_after_expiry() -> None:
    release = threading.Event()
    done = Completions()
    batcher = Batcher(lambda users: release.wait(5), done, max_batch_size=1, max_wait_s=0.0, max_outstanding=4)
    with batcher:
        batcher.submit([(0, 0)])
        wait_for(lambda: batcher.queued == 0)  # query 0 is being processed (blocked)
        batcher.submit((u, u) for u in range(1, 11))  # 4 queue, 6 are dropped at once
        assert sorted(done.ids(False)) == list(range(5, 11))
        batcher.expire()  # time is up: anything submitted later is dropped at once...
        batcher.submit([(11, 11)])
        assert sorted(done.ids(False)) == [*range(5, 12)]
        release.set()  # ...and the worker thread drops the 4 queued ones as soon as it is free
    assert sorted(done.ids(False)) == list(range(1, 12))
    assert done.ids(True) == [0]
    assert batcher.stats.dropped == 11 and batcher.stats.served == 1 and batcher.stats.submitted == 12


def test_batcher_completes_a_failed_batch_as_dropped() -> None:
    def boom(users: list[int]) -> None:
        raise RuntimeError("model fell over")

    done = Completions()
    with Batcher(boom, done, max_batch_size=4, max_wait_s=0.0) as batcher:
        batcher.submit([(1, 1), (2, 2)])
        wait_for(lambda: len(done.ids(False)) == 2)
    assert isinstance(batcher.error, RuntimeError)
    assert batcher.stats.dropped == 2


# ----------------------------------------------------------------------------------------------- logs


def test_detail_log_parsing_on_a_real_snippet() -> None:
    log = parse_detail_log("some preamble\n" + DETAIL_SNIPPET + ":::MLLOG {truncated")
    assert log["result_validity"] == "VALID"
    assert log["early_stopping_met"] is True
    assert log["effective_scenario"] == "Server"
    assert log["result_99.00_percentile_latency_ns"] == 16975776
    assert log["result_completed_samples_per_sec"] == pytest.approx(59.8301)
    assert log["result_scheduled_samples_per_sec"] == pytest.approx(59.851)
    assert log["errors"] == [] and log["warnings"] == []
    latency = latency_percentiles_s(log)
    assert latency["p99"] == pytest.approx(0.016975776)
    assert latency["p99.9"] == pytest.approx(0.018647832)
    assert latency["p50"] < latency["p90"] < latency["p99"] <= latency["p99.9"]


def test_detail_log_collects_errors_and_warnings() -> None:
    text = (
        ':::MLLOG {"key": "error_runtime", "value": "bad", "metadata": {"is_error": true, "is_warning": false}}\n'
        ':::MLLOG {"key": "warning_generic_message", "value": "hmm", "metadata": {"is_error": false, '
        '"is_warning": true}}\n'
    )
    log = parse_detail_log(text)
    assert log["errors"] == ["error_runtime: bad"]
    assert log["warnings"] == ["warning_generic_message: hmm"]


# ----------------------------------------------------------------------------------------------- runs


def _point(tmp_path: Path, load: dict):
    import yaml

    path = tmp_path / "load.yaml"
    path.write_text(yaml.safe_dump(tiny_scenario_dict("tinyload", load=load), sort_keys=False))
    return expand_points(path)[0]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("load-results")  # shared: the GEMM peak is measured once


@pytest.mark.slow
def test_a_real_server_run_writes_a_complete_load_section_with_a_failed_batch_dropped(
    tmp_path: Path, results_dir: Path, monkeypatch
) -> None:
    # The tiny model under LoadGen's server scenario, one of whose batches fails. Its verdict depends on how fast
    # this machine is right now, so only the structure is checked here; verdicts are judged on stand-ins below.
    from bench.loop import pipeline

    real_prepare, calls = pipeline.prepare_batch, {"n": 0}

    def fail_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:  # past the warm-up and calibration batches: inside LoadGen's run
            raise RuntimeError("one batch fails")
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(pipeline, "prepare_batch", fail_once)
    point = _point(tmp_path, {"mode": "server", "target_qps": 160, "min_duration_s": 3, "max_wall_s": 12})
    result = run_point(point, machine_dir=results_dir / "test-machine")
    load = result.load
    assert load is not None and load.mode == "server" and load.target_qps == 160
    assert load.verdict == "INVALID" and load.loadgen_validity in ("VALID", "INVALID")
    assert calls["n"] > 12 and "one batch fails" in (load.batcher_error or "")
    # The failed batch left no timings behind: one end-to-end sample per batch served, as in any result.
    assert len(result.latency.samples[Stage.END_TO_END]) == result.latency.iterations == load.batches
    assert load.queries == load.served + load.dropped >= 459
    assert len(load.query_latency_samples_s) == load.served > 0
    assert 0 < load.latency_s["p50"] <= load.latency_s["p99"] <= load.latency_s["max"]
    log_dir = results_dir / "test-machine" / load.log_dir
    assert log_dir.name.endswith("-loadgen")
    assert sorted(p.name for p in log_dir.iterdir()) == ["mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    assert Stage.END_TO_END in result.summary.latency.stages
    assert result.summary.throughput.requests_per_s == pytest.approx(load.served / load.wall_s)
    assert result.summary.throughput.time_per_output_token_s is None  # batches of varying size: LoadGen's own
    assert result.energy.method and result.latency.iterations == load.batches
    # Its tail is the queries' p99 from LoadGen, not a p99 of a few batches: no weak-p99 warning.
    assert not [w for w in result.warnings_of(WarningKind.WEAK_STATISTICS) if w.startswith("p99 from")]


def stand_in(service_s: float):
    """A system under test whose latency the test controls: every batch takes `service_s`."""
    return lambda users: time.sleep(service_s)


def test_a_system_well_within_its_bound_is_valid(tmp_path: Path) -> None:
    # 1 ms per batch of up to 8 against a 2 s p99 bound: a busy machine is slower, but not 2000x slower.
    load = Load(mode="server", target_qps=500, min_duration_s=1, p99_slo_ms=2000, max_wall_s=20)
    run = run_loadgen(load, stand_in(0.001), total_samples=64, outdir=tmp_path, target_qps=500)
    assert run.verdict == "VALID", (run.loadgen_validity, run.stats)
    assert run.stats.dropped == 0 and not run.timed_out


@pytest.mark.slow
def test_overload_is_invalid_drops_queries_and_is_bounded(tmp_path: Path) -> None:
    # 50 ms per batch of up to 8 serves at most 160 QPS; 3000 QPS offered overflows the queue of 16.
    load = Load(mode="server", target_qps=3000, min_duration_s=2, max_outstanding=16, max_wall_s=6)
    run = run_loadgen(load, stand_in(0.05), total_samples=64, outdir=tmp_path, target_qps=3000)
    assert run.verdict == "INVALID"
    assert run.stats.dropped > 0 and run.stats.served > 0
    assert len(run.stats.served_latencies_s) == run.stats.served  # dropped queries are not latencies
    assert run.summary()["latency_s"]["max"] == max(run.stats.served_latencies_s)


@pytest.mark.slow
def test_single_stream_reports_latency_percentiles(tmp_path: Path) -> None:
    load = Load(mode="single_stream", min_duration_s=1, min_query_count=20, max_batch_size=1, max_wall_s=15)
    run = run_loadgen(load, stand_in(0.005), total_samples=16, outdir=tmp_path, expected_latency_s=0.005)
    summary = run.summary()
    assert run.stats.served >= 20 and run.stats.dropped == 0 and summary["batch_size_mean"] == 1.0
    assert run.verdict == "VALID", (run.loadgen_validity, summary["invalid_reason"])
    assert 0.005 <= summary["latency_s"]["p50"] <= summary["latency_s"]["p90"]


@pytest.mark.slow
def test_wall_time_bound_ends_a_run_that_would_not_finish(tmp_path: Path) -> None:
    # Offline issues 10_000 samples; at 0.2 s per batch of 8 that would take minutes. The bound cuts it at 2 s.
    load = Load(mode="offline", min_duration_s=1, max_wall_s=2, min_query_count=1)
    begin = time.perf_counter()
    run = run_loadgen(load, lambda users: time.sleep(0.2), total_samples=64, outdir=tmp_path, expected_qps=10_000)
    assert time.perf_counter() - begin < 60  # not the minutes the schedule asks for
    assert run.timed_out and run.verdict == "INVALID"
    assert run.stats.dropped > 0


def test_peak_search_bisects_to_the_highest_valid_rate() -> None:
    @dataclass
    class Probe:
        qps: float
        verdict: str

    capacity = 777.0
    seen: list[float] = []

    def probe(qps: float) -> Probe:
        seen.append(qps)
        return Probe(qps, "VALID" if qps <= capacity else "INVALID")

    search = find_peak(probe, 300, 1600, tolerance=0.05)
    good, bad = search.bracket
    assert seen[:2] == [300, 1600] and good <= capacity < bad and (bad - good) / bad < 0.05
    assert search.peak_qps == good
    assert find_peak(probe, 900, 1600, tolerance=0.05).peak_qps is None  # even the low end fails
    assert find_peak(probe, 100, 700, tolerance=0.05).peak_qps == 700  # the high end passes: it is the peak


@pytest.mark.benchmark_run
def test_peak_search_finds_a_stand_in_systems_capacity(tmp_path: Path) -> None:
    # Stand-in system: every batch (up to 8 queries) takes 10 ms, so capacity is 800 QPS; under a 50 ms p99
    # bound the peak sits a little below it (queueing near saturation).
    service_s, batch, capacity = 0.010, 8, 800.0
    load = Load(
        mode="server",
        qps_range=(300, 1600),
        min_duration_s=1.6,
        max_batch_size=batch,
        max_wait_ms=2,
        p99_slo_ms=50,
        max_wall_s=5,
        peak_tolerance=0.1,
    )

    def probe(qps: float):
        return run_loadgen(
            load, lambda users: time.sleep(service_s), total_samples=64, outdir=tmp_path / f"{qps:.0f}", target_qps=qps
        )

    search = find_peak(probe, 300, 1600, tolerance=0.1)
    assert search.peak_qps is not None
    assert 0.6 * capacity <= search.peak_qps <= 1.05 * capacity, [(p.qps, p.verdict, p.p99_s) for p in search.probes]
    assert search.probes[0].verdict == "VALID" and search.probes[1].verdict == "INVALID"
    good, bad = search.bracket
    assert (bad - good) / bad < 0.1


# ----------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ({"mode": "server"}, "needs exactly one of target_qps or qps_range"),
        ({"mode": "server", "target_qps": 100, "qps_range": [1, 2]}, "needs exactly one of target_qps"),
        ({"mode": "server", "qps_range": [200, 100]}, "qps_range: low (200.0) must be below high"),
        ({"mode": "server", "target_qps": 100, "min_query_count": 100}, "min_query_count (100) is below 459"),
        ({"mode": "server", "target_qps": 10, "min_duration_s": 5}, "10 qps x 5 s = 50 queries, below 459"),
        ({"mode": "server", "qps_range": [10, 100], "min_duration_s": 5}, "below 459"),
        ({"mode": "offline", "target_qps": 10}, "target_qps applies to server mode only"),
        ({"mode": "offline", "max_batch_size": 0}, "greater than 0"),
        ({"mode": "offline", "max_batch_size": 64, "max_outstanding": 8}, "max_outstanding (8) is below"),
        ({"mode": "offline", "min_duration_s": 30, "max_wall_s": 10}, "max_wall_s (10) must exceed"),
        ({"mode": "burst"}, "offline"),
    ],
)
def test_impossible_load_sections_are_rejected(load: dict, expected: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Scenario.model_validate(tiny_scenario_dict(load=load))
    assert expected in str(exc.value)


def test_load_error_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        _point(tmp_path, {"mode": "server", "target_qps": 100, "min_query_count": 10})
    message = str(exc.value)
    assert "load" in message and "459" in message and "\n" not in message


def test_valid_load_section_round_trips() -> None:
    scenario = Scenario.model_validate(tiny_scenario_dict(load={"mode": "server", "target_qps": 60}))
    assert scenario.load is not None and scenario.load.min_query_count == 459
    assert Scenario.model_validate(tiny_scenario_dict()).load is None


def test_token_latency_keys_are_read_apart_from_query_latencies() -> None:
    from bench.load.logs import latency_percentiles_s, time_per_output_token_s

    log = {
        "result_99.00_percentile_latency_ns": 300_000_000,
        "result_first_token_99.00_percentile_latency_ns": 240_000_000,
        "result_first_token_mean_latency_ns": 80_000_000,
        "result_time_per_output_token_50.00_percentile_ns": 3_000_000,
    }
    assert latency_percentiles_s(log) == {"p99": 0.3}
    assert latency_percentiles_s(log, "first_token_") == {"p99": 0.24, "mean": 0.08}
    assert time_per_output_token_s(log) == {"p50": 0.003}
