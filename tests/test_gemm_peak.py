from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.hardware import gemm_peak
from bench.hardware.gemm_peak import GemmPeak, cached_gemm_peak, measure_gemm_peak

CPU = torch.device("cpu")


def test_measure_is_positive_and_best_of_samples() -> None:
    peak = measure_gemm_peak(CPU, n=256, repeats=3)
    assert isinstance(peak, GemmPeak)
    assert len(peak.samples) == 3 and all(s > 0 for s in peak.samples)
    assert peak.flops_per_s == max(peak.samples)
    assert (peak.n, peak.dtype, peak.device) == (256, "torch.float32", "cpu")
    assert peak.threads == torch.get_num_threads()
    assert peak.method == "measured: best of 3 square GEMMs"


def test_cache_keeps_the_best_measurement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cached_gemm_peak(CPU, torch.float32, tmp_path, n=256, repeats=2)
    files = list(tmp_path.glob("gemm_peak__*.json"))
    assert len(files) == 1

    def measured_at(flops: float):
        return lambda *args, **kwargs: replace(first, flops_per_s=flops, samples=[flops])

    # A busy machine measures low: the cached best stays.
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(first.flops_per_s / 10))
    assert cached_gemm_peak(CPU, torch.float32, tmp_path, n=256, repeats=2) == first
    # A quiet machine measures higher: it becomes the new best, on disk too.
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(first.flops_per_s * 2))
    better = cached_gemm_peak(CPU, torch.float32, tmp_path, n=256, repeats=2)
    assert better.flops_per_s == first.flops_per_s * 2
    monkeypatch.setattr(gemm_peak, "measure_gemm_peak", measured_at(1.0))
    assert cached_gemm_peak(CPU, torch.float32, tmp_path, n=256, repeats=2) == better


def test_cache_key_separates_dtype_and_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path)
    assert gemm_peak.gemm_cache_path(CPU, torch.bfloat16, tmp_path) != base
    threads = torch.get_num_threads()
    monkeypatch.setattr(torch, "get_num_threads", lambda: threads + 1)
    assert gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path) != base


def test_corrupt_cache_is_remeasured(tmp_path: Path) -> None:
    path = gemm_peak.gemm_cache_path(CPU, torch.float32, tmp_path, n=256)
    path.write_text("{not json")
    peak = cached_gemm_peak(CPU, torch.float32, tmp_path, n=256, repeats=1)
    assert peak.flops_per_s > 0 and gemm_peak._read_cache(path) == peak


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_measure_cuda() -> None:
    peak = measure_gemm_peak(torch.device("cuda"), n=1024, repeats=3)
    assert peak.flops_per_s > 0 and peak.device.startswith("cuda")
