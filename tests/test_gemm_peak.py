import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from bench.hardware import gemm_peak
from bench.hardware.gemm_peak import GemmPeak, cached_gemm_peak, measure_gemm_peak

CPU = torch.device("cpu")


def test_measure_is_positive_and_best_of_samples() -> None:
    peak = measure_gemm_peak(CPU, max_n=256, repeats=3)
    assert isinstance(peak, GemmPeak)
    libraries = 2 if torch.backends.mkldnn.is_available() else 1  # torch.matmul, and oneDNN where torch has it
    assert len(peak.samples) == 3 * libraries and all(s > 0 for s in peak.samples)
    assert peak.flops_per_s == max(peak.samples)
    assert (peak.n, peak.dtype, peak.device) == (256, "torch.float32", "cpu")
    assert peak.threads == torch.get_num_threads()
    assert peak.method.startswith("measured: best of 3 square GEMMs of side 256")


def test_the_side_is_sized_by_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in GEMM that takes 1 s at side 256 and 8x longer per doubling: the budget allows no growth, so the
    # measurement stays at the smallest side however slow the dtype is.
    def timer(a, b, out, repeats):
        return [(a.shape[0] / 256) ** 3 for _ in range(repeats)]

    monkeypatch.setattr(gemm_peak, "_time_cpu", timer)
    slow = measure_gemm_peak(CPU, max_n=2048, budget_s=5.0, repeats=3)
    assert slow.n == 256
    # 1 ms at 256: sides grow while all the GEMMs at the next side fit in the budget.
    monkeypatch.setattr(gemm_peak, "_time_cpu", lambda a, b, out, r: [1e-3 * (a.shape[0] / 256) ** 3] * r)
    # Sized for torch.matmul alone (oneDNN, where torch has it, gets its own budget): 2048 would take 4 x 0.512 s.
    monkeypatch.setattr(gemm_peak, "_time_onednn", lambda a, b, r: None)
    assert measure_gemm_peak(CPU, max_n=2048, budget_s=0.5, repeats=3).n == 1024
    assert measure_gemm_peak(CPU, max_n=512, budget_s=100.0, repeats=3).n == 512


def test_the_faster_gemm_library_sets_the_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    """MKL's square GEMM ran at 0.8x oneDNN's on the AVX2 EPYC: the peak is the faster library's, and says so."""
    flops = 2.0 * 256**3
    monkeypatch.setattr(gemm_peak, "_time_cpu", lambda a, b, out, r: [flops / 80e9] * r)
    monkeypatch.setattr(gemm_peak, "_time_onednn", lambda a, b, r: [flops / 100e9] * r)
    peak = measure_gemm_peak(CPU, max_n=256, repeats=2)
    assert peak.flops_per_s == pytest.approx(100e9) and len(peak.samples) == 4
    assert "by torch.matmul and 2 by oneDNN on a prepacked weight (the best: oneDNN)" in peak.method
    monkeypatch.setattr(gemm_peak, "_time_onednn", lambda a, b, r: [flops / 60e9] * r)
    assert "(the best: torch.matmul)" in measure_gemm_peak(CPU, max_n=256, repeats=2).method
    monkeypatch.setattr(gemm_peak, "_time_onednn", lambda a, b, r: None)  # no oneDNN path for this build or dtype
    alone = measure_gemm_peak(CPU, max_n=256, repeats=2)
    assert alone.flops_per_s == pytest.approx(80e9) and len(alone.samples) == 2 and "oneDNN" not in alone.method


def test_a_dtype_onednn_cannot_run_is_timed_by_torch_matmul_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_path(weight: torch.Tensor, batch_size: object) -> torch.Tensor:
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx512bw")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", no_path)
    peak = measure_gemm_peak(CPU, max_n=256, repeats=2)
    assert len(peak.samples) == 2 and "oneDNN" not in peak.method


def test_cache_keeps_the_best_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=2)
    files = list(tmp_path.glob("gemm_peak__*.json"))
    assert len(files) == 1

    def measured_at(flops: float):
        return lambda *args, **kwargs: replace(first, flops_per_s=flops, samples=[flops])

    # A busy machine measures low: the cached best stays.
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(first.flops_per_s / 10))
    assert cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=2) == first
    # A quiet machine measures higher: it becomes the new best, on disk too.
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(first.flops_per_s * 2))
    better = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=2)
    assert better.flops_per_s == first.flops_per_s * 2
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(1.0))
    assert cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=2) == better


def test_two_runs_updating_the_cache_at_once_keep_the_best(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that read the cache, and is about to write its own (lower) figure, holds the update: a second run
    with a higher figure waits, and the higher one is what stays. Without the lock the first write wins."""
    import threading

    first = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=1)
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    low, high = (replace(first, flops_per_s=first.flops_per_s * f, samples=[first.flops_per_s * f]) for f in (2, 3))
    read_by_low, go_on = threading.Event(), threading.Event()
    reading = gemm_peak._read_cache

    def read_then_pause(cache: Path) -> GemmPeak | None:
        cached = reading(cache)
        if threading.current_thread().name == "low":
            read_by_low.set()
            go_on.wait(timeout=30)
        return cached

    monkeypatch.setattr(gemm_peak, "_read_cache", read_then_pause)
    runs = [threading.Thread(target=gemm_peak.best_of, args=(peak, tmp_path), name=name) for peak, name in
            ((low, "low"), (high, "high"))]  # fmt: skip
    runs[0].start()
    assert read_by_low.wait(timeout=30)
    runs[1].start()
    runs[1].join(timeout=0.5)  # with the lock it is still waiting here; without, it has written
    go_on.set()
    for run in runs:
        run.join(timeout=30)
    assert reading(path) == high


def test_cache_key_separates_dtype_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    assert gemm_peak.gemm_cache_path(CPU, torch.bfloat16, tmp_path) != base
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    assert gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path) != base


def test_a_cache_from_a_later_release_keeps_its_figure(tmp_path: Path) -> None:
    """A field this release does not know (a later one wrote the file) is passed over; the figure still counts."""
    peak = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=1)
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    later = asdict(replace(peak, flops_per_s=peak.flops_per_s * 5, samples=[peak.flops_per_s * 5]))
    path.write_text(json.dumps(later | {"field_added_later": "x"}))
    assert gemm_peak.best_of(peak, tmp_path).flops_per_s == peak.flops_per_s * 5
    for not_a_cache in ("[1, 2]", '"text"', "{}"):
        assert gemm_peak._parse_peak(not_a_cache.encode()) is None


def test_corrupt_cache_is_remeasured(tmp_path: Path) -> None:
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    path.write_text("{not json")
    peak = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=1)
    assert peak.flops_per_s > 0 and gemm_peak._read_cache(path) == peak


def test_a_run_uses_a_recently_checked_cache_and_remeasures_an_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from bench.measurement import point

    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    cached = measure_gemm_peak(CPU, max_n=256, repeats=1)
    assert cached.checked_at is not None and abs(cached.checked_at - time.time()) < 60
    budgets: list[float] = []

    def measured(device, dtype, *, max_n, budget_s):
        budgets.append(budget_s)
        slower = cached.flops_per_s / 2
        return replace(cached, flops_per_s=slower, samples=[slower], checked_at=time.time())

    monkeypatch.setattr(point, "measure_gemm_peak", measured)
    monkeypatch.setattr(point, "_MEASURED", {})
    # Measured a moment ago: used as it stands, nothing measured.
    gemm_peak._write_cache(path, cached)
    assert point.gemm_peak("cpu", "float32", tmp_path) == (cached, False) and budgets == []
    # Last checked more than a day ago, or at an unknown time (a cache from before the field): measured with the
    # full budget. The cache still wins (a slower reading never lowers it), and is stored as checked now.
    for checked_at in (time.time() - gemm_peak.RECHECK_AFTER_S - 60, None):
        monkeypatch.setattr(point, "_MEASURED", {})
        gemm_peak._write_cache(path, replace(cached, checked_at=checked_at))
        assert gemm_peak.recently_checked_peak(CPU, torch.float32, tmp_path) is None
        peak, measured_now = point.gemm_peak("cpu", "float32", tmp_path)
        assert peak.flops_per_s == cached.flops_per_s and budgets[-1] == gemm_peak.DEFAULT_BUDGET_S and measured_now
        assert gemm_peak.recently_checked_peak(CPU, torch.float32, tmp_path) == peak
    # A stamp from the future (a clock put back since) is no recent check either, and the next check replaces it.
    monkeypatch.setattr(point, "_MEASURED", {})
    gemm_peak._write_cache(path, replace(cached, checked_at=time.time() + 30 * 24 * 3600))
    assert gemm_peak.recently_checked_peak(CPU, torch.float32, tmp_path) is None
    point.gemm_peak("cpu", "float32", tmp_path)
    assert gemm_peak._read_cache(path).checked_at <= time.time() and len(budgets) == 3
    # So the next process measures nothing.
    monkeypatch.setattr(point, "_MEASURED", {})
    assert point.gemm_peak("cpu", "float32", tmp_path)[0].flops_per_s == cached.flops_per_s and len(budgets) == 3
    # A check time that is not a time makes the file no cache at all.
    path.write_text(json.dumps({**json.loads(path.read_text()), "checked_at": "today"}))
    assert gemm_peak._read_cache(path) is None


def test_a_workers_check_of_the_same_figure_reaches_the_driver(tmp_path: Path) -> None:
    import time

    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    older = replace(measure_gemm_peak(CPU, max_n=256, repeats=1), checked_at=1.0)
    gemm_peak._write_cache(path, older)
    rechecked = replace(older, checked_at=2.0)
    assert gemm_peak.keep_if_better(path, json.dumps(asdict(rechecked)).encode())
    assert gemm_peak._read_cache(path) == rechecked
    # An older check of it, or a lower figure checked later, changes nothing.
    assert not gemm_peak.keep_if_better(path, json.dumps(asdict(older)).encode())
    lower = replace(older, flops_per_s=older.flops_per_s / 2, samples=[older.flops_per_s / 2], checked_at=3.0)
    assert not gemm_peak.keep_if_better(path, json.dumps(asdict(lower)).encode())
    # Nor does a check from a worker whose clock runs a day ahead.
    ahead = replace(older, checked_at=time.time() + gemm_peak.RECHECK_AFTER_S)
    assert not gemm_peak.keep_if_better(path, json.dumps(asdict(ahead)).encode())
    assert gemm_peak._read_cache(path) == rechecked


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measure_cuda() -> None:
    peak = measure_gemm_peak(torch.device("cuda"), max_n=1024, repeats=3)
    assert peak.flops_per_s > 0 and peak.device.startswith("cuda")


def test_show_says_whether_a_run_measured_its_peak() -> None:
    from datetime import datetime, timezone

    from bench.console.show import _peak_provenance
    from bench.results.model import GemmPeakInfo

    peak = measure_gemm_peak(CPU, max_n=256, repeats=1)
    info = GemmPeakInfo(**peak.measurement(), measured_now=False)
    assert info.checked_at == datetime.fromtimestamp(peak.checked_at, timezone.utc)
    assert _peak_provenance(info) == (
        f" (the best seen on this machine, last checked {info.checked_at:%Y-%m-%d %H:%M} UTC; not measured in this run)"
    )
    assert _peak_provenance(info.model_copy(update={"measured_now": None})) == ""  # an older result: nothing said
