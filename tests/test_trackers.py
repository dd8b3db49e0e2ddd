import gc
import random
import statistics
import sys
import time

import pytest
import torch

from bench.trackers.latency import LatencyResult, LatencyTracker
from bench.trackers.memory import MemoryResult, MemoryTracker, _MaxBuckets

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
MB = 1024 * 1024


def test_latency_records_one_sample_per_stage_entry() -> None:
    tracker = LatencyTracker(CPU)
    for _ in range(3):
        with tracker.stage("encode"):
            time.sleep(0.002)
        with tracker.stage("score"):
            pass
    result = tracker.result()
    assert isinstance(result, LatencyResult)
    assert (result.unit, result.method) == ("s", "perf_counter")
    assert list(result.samples) == ["encode", "score"]
    assert len(result.samples["encode"]) == 3 and len(result.samples["score"]) == 3
    assert all(s >= 0.002 for s in result.samples["encode"])
    assert all(s > 0 for s in result.samples["score"])


def test_latency_nested_stages_time_independently() -> None:
    tracker = LatencyTracker(CPU)
    with tracker.stage("outer"):
        with tracker.stage("inner"):
            time.sleep(0.001)
        time.sleep(0.001)
    samples = tracker.result().samples
    assert samples["outer"][0] > samples["inner"][0] >= 0.001


def test_latency_stage_exception_still_records_and_propagates() -> None:
    tracker = LatencyTracker(CPU)
    with pytest.raises(KeyError), tracker.stage("boom"):
        raise KeyError("x")
    assert len(tracker.result().samples["boom"]) == 1


def test_latency_roll_back_forgets_a_failed_batch_and_nothing_before_it() -> None:
    tracker = LatencyTracker(CPU)
    with tracker.stage("end_to_end"), tracker.stage("scoring"):
        pass
    mark = tracker.mark()
    with pytest.raises(RuntimeError), tracker.stage("end_to_end"):
        with tracker.stage("preprocess"):
            pass
        with tracker.stage("scoring"):
            raise RuntimeError("the batch fails")
    tracker.roll_back(mark)
    assert {name: len(values) for name, values in tracker.result().samples.items()} == {"end_to_end": 1, "scoring": 1}


def test_latency_discard_and_reset_drop_samples() -> None:
    tracker = LatencyTracker(CPU)
    with tracker.stage("warmup"):
        pass
    tracker.discard()
    assert tracker.result().samples == {}
    with tracker.stage("a"):
        pass
    assert list(tracker.result().samples) == ["a"]
    tracker.reset()
    assert tracker.result().samples == {}
    with tracker.stage("a"):
        pass
    assert len(tracker.result().samples["a"]) == 1


def test_latency_result_is_a_copy() -> None:
    tracker = LatencyTracker(CPU)
    with tracker.stage("a"):
        pass
    result = tracker.result()
    with tracker.stage("a"):
        pass
    assert len(result.samples["a"]) == 1


@pytest.mark.benchmark_run  # a speed bar: not in the default suite, which must pass on a busy machine
def test_latency_empty_stage_overhead_is_tiny() -> None:
    tracker = LatencyTracker(CPU)
    stage = tracker.stage
    per_call = []
    for _ in range(200):  # 200 blocks of 100 entries; the median block is robust to scheduler noise
        start = time.perf_counter()
        for _ in range(100):
            with stage("empty"):
                pass
        per_call.append((time.perf_counter() - start) / 100)
    assert statistics.median(per_call) < 20e-6
    assert len(tracker.result().samples["empty"]) == 20_000


def test_latency_cuda_device_without_cuda_raises() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(RuntimeError, match="CUDA"):
        LatencyTracker(torch.device("cuda"))


@needs_cuda
@pytest.mark.parametrize("sync_each_stage", [True, False])
def test_latency_cuda_events(sync_each_stage: bool) -> None:
    device = torch.device("cuda")
    tracker = LatencyTracker(device, sync_each_stage=sync_each_stage)
    x = torch.randn(1024, 1024, device=device)
    for _ in range(3):
        with tracker.stage("matmul"):
            x @ x
    result = tracker.result()
    assert result.method == "cuda_event" and result.sync_each_stage == sync_each_stage
    assert len(result.samples["matmul"]) == 3 and all(s > 0 for s in result.samples["matmul"])


def test_memory_tracker_sees_a_300mb_tensor() -> None:
    with MemoryTracker(CPU) as mem:
        big = torch.empty(300 * MB, dtype=torch.uint8)
        big.fill_(1)  # touch every page so it is resident, not just reserved
        time.sleep(0.05)  # several sampler intervals while it is alive
        del big
        gc.collect()
    result = mem.result()
    assert isinstance(result, MemoryResult)
    assert result.unit == "bytes"
    assert result.rss_peak - result.rss_baseline >= 250 * MB
    assert result.rss_peak == max(result.rss_samples)
    assert result.n_raw_samples >= 3
    assert result.ru_maxrss_bytes >= result.rss_peak - 64 * MB  # lifetime high-water mark, coarse units
    assert result.cuda_peak_allocated is None and result.cuda_peak_reserved is None
    if result.anon_peak is not None:  # Linux: the tensor is the process's own memory
        assert result.anon_baseline is not None and result.anon_peak - result.anon_baseline >= 250 * MB
        assert result.anon_peak <= result.rss_peak


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shared pages are reported on Linux")
def test_file_backed_pages_count_in_rss_but_not_in_own_memory(tmp_path) -> None:
    import mmap

    path = tmp_path / "blob"
    path.write_bytes(b"\1" * (64 * MB))
    # The window closes with the mapping still resident, so its closing sample sees it: no sampler timing.
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        MemoryTracker(CPU) as mem,
    ):
        checksum = sum(mapped[i] for i in range(0, 64 * MB, 4096))  # fault every page in: file-backed RSS
    assert checksum == 64 * MB // 4096
    result = mem.result()
    assert result.rss_peak - result.rss_baseline >= 48 * MB
    assert result.anon_peak - result.anon_baseline < 16 * MB


@pytest.mark.parametrize("n", [1, 1999, 4000, 4001, 123_457])
def test_max_buckets_bound_points_and_keep_each_buckets_max(n: int) -> None:
    rng = random.Random(n)
    values = [rng.randrange(10**9) for _ in range(n)]
    buckets = _MaxBuckets(2000)
    for value in values:
        buckets.add(value)
    points = buckets.finish()
    size = buckets.bucket
    assert len(points) <= 2000 and buckets.n_raw == n
    assert points == [max(values[i : i + size]) for i in range(0, n, size)]


def test_memory_samples_are_downsampled_keeping_the_max() -> None:
    with MemoryTracker(CPU, interval_s=1e-5) as mem:
        time.sleep(0.1)
    result = mem.result()
    assert len(result.rss_samples) <= 2000
    assert result.rss_peak == max(result.rss_samples)
    # Each retained point stands for sample_interval_s / requested_interval_s raw samples.
    assert result.sample_interval_s >= result.requested_interval_s


def test_memory_result_before_exit_raises() -> None:
    mem = MemoryTracker(CPU)
    with pytest.raises(RuntimeError):
        mem.result()


@needs_cuda
def test_memory_tracker_cuda_peaks() -> None:
    device = torch.device("cuda")
    with MemoryTracker(device) as mem:
        x = torch.empty(256 * MB, dtype=torch.uint8, device=device)
        del x
    result = mem.result()
    assert result.cuda_peak_allocated is not None and result.cuda_peak_allocated >= 256 * MB
    assert result.cuda_peak_reserved is not None and result.cuda_peak_reserved >= result.cuda_peak_allocated
