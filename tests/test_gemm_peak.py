from dataclasses import replace
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


def test_cache_key_separates_dtype_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    assert gemm_peak.gemm_cache_path(CPU, torch.bfloat16, tmp_path) != base
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    assert gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path) != base


def test_corrupt_cache_is_remeasured(tmp_path: Path) -> None:
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    path.write_text("{not json")
    peak = cached_gemm_peak(CPU, torch.float32, tmp_path, max_n=256, repeats=1)
    assert peak.flops_per_s > 0 and gemm_peak._read_cache(path) == peak


def test_a_run_uses_a_recently_checked_cache_and_remeasures_an_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    from bench.measurement import point

    cached = measure_gemm_peak(CPU, max_n=256, repeats=1)
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    gemm_peak._write_cache(path, cached)
    budgets: list[float] = []

    def measured(device, dtype, *, max_n, budget_s):
        budgets.append(budget_s)
        return replace(cached, flops_per_s=cached.flops_per_s / 2, samples=[cached.flops_per_s / 2])

    monkeypatch.setattr(point, "measure_gemm_peak", measured)
    monkeypatch.setattr(point, "_MEASURED", {})
    # Written a moment ago: used as it stands, nothing measured.
    assert point.gemm_peak("cpu", "float32", tmp_path) == cached and budgets == []
    # Last checked more than a day ago: measured with the full budget; the cache still wins (a slower reading
    # never lowers it), and the comparison counts as a check, so the next process measures nothing.
    day_ago = time.time() - gemm_peak.RECHECK_AFTER_S - 60
    os.utime(path, (day_ago, day_ago))
    assert gemm_peak.recently_checked_peak(CPU, torch.float32, tmp_path) is None
    assert point.gemm_peak("cpu", "float32", tmp_path) == cached and budgets == [gemm_peak.DEFAULT_BUDGET_S]
    assert path.stat().st_mtime > day_ago + 60
    monkeypatch.setattr(point, "_MEASURED", {})
    assert point.gemm_peak("cpu", "float32", tmp_path) == cached and len(budgets) == 1
    # A corrupt file is no recent figure: measured again.
    path.write_text("{not json")
    assert gemm_peak.recently_checked_peak(CPU, torch.float32, tmp_path) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measure_cuda() -> None:
    peak = measure_gemm_peak(torch.device("cuda"), max_n=1024, repeats=3)
    assert peak.flops_per_s > 0 and peak.device.startswith("cuda")
