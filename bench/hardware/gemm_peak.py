"""This machine's achievable dense GEMM throughput, measured once and cached.

Vendor peaks (devices.yaml) exist for GPUs only, and even there what a library actually reaches is a
fairer denominator for utilisation; so we time square matmuls ourselves and keep the best. On a CPU both of
torch's GEMM libraries are timed, the BLAS behind torch.matmul (MKL on x86 builds) and oneDNN on a prepacked
weight, and the faster counts: on the 2-core AVX2 EPYC (2026-11-29) MKL reached 101-110 GFLOP/s on a 2048-square
GEMM where oneDNN reached 127-131, so a peak from MKL alone would let utilisation pass 100%.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.core.io import atomic_write_json, updating
from bench.hardware.environment import machine_slug
from bench.models.levers import onednn_linear, onednn_packed

_CUDA_WARMUP = 3  # cuBLAS handle creation and heuristic selection happen on the first calls
_CPU_WARMUP = 1  # spins up the intra-op thread pool and packs oneDNN/MKL kernels
MIN_SIDE = 256
DEFAULT_BUDGET_S = 2.0
# A cached figure that a measurement was compared with less than this long ago is used as it stands. Re-measuring
# it on every run (then with a 0.5 s budget) cost the quickstart 0.3 s of its start-up on the 2-core AVX2 EPYC
# (2026-11-29), for a figure that a new reading can only raise; a day still lets a quieter hour raise it.
RECHECK_AFTER_S = 24 * 3600.0
CLOCK_SLACK_S = 300.0  # how far ahead of this machine's clock another machine's check time may be


@dataclass(kw_only=True)
class GemmPeak:
    """Best-of-N square GEMM throughput; `samples` keeps every repeat's FLOP/s."""

    flops_per_s: float  # max(samples): the least-disturbed repeat is closest to what hardware can do
    samples: list[float]  # FLOP/s of each timed repeat, in order
    n: int  # matrix side: each GEMM is (n×n)·(n×n), 2·n³ FLOPs
    dtype: str  # e.g. "torch.float32"
    device: str  # e.g. "cpu", "cuda:0"
    threads: int  # torch intra-op threads at measurement time
    float32_matmul_precision: str  # "highest" means no TF32 on CUDA: a true fp32 figure
    torch_version: str
    method: str
    unit: str = "FLOP/s"
    # time.time() of the latest measurement compared with this figure (its own, or a later one it beat): in the
    # file, so the check travels with the figure (to a Ray worker and back). None in caches written before it.
    checked_at: float | None = None

    def measurement(self) -> dict[str, object]:
        """The figure and how it was measured, as results record it: the cache's `checked_at` (a time.time()) as
        a UTC datetime, or None."""
        fields = asdict(self)
        stamp = fields.pop("checked_at")
        fields["checked_at"] = datetime.fromtimestamp(stamp, timezone.utc) if stamp is not None else None
        return fields


def _wall_seconds(call: Callable[[], object], repeats: int, *, warmup: int = _CPU_WARMUP) -> list[float]:
    """Wall seconds of each of `repeats` calls, after `warmup` untimed ones (a CPU call returns when done)."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _time_cpu(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, repeats: int) -> list[float]:
    return _wall_seconds(lambda: torch.matmul(a, b, out=out), repeats)  # `out=`: allocation is not timed


def _time_cuda(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, repeats: int) -> list[float]:
    # Events record on the current device's stream, so make the tensors' device current.
    with torch.cuda.device(a.device):
        for _ in range(_CUDA_WARMUP):
            torch.matmul(a, b, out=out)
        torch.cuda.synchronize()
        seconds = []
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            torch.matmul(a, b, out=out)
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000.0)
    return seconds


def measure_gemm_peak(
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
    *,
    max_n: int = 2048,
    budget_s: float = DEFAULT_BUDGET_S,
    repeats: int = 5,
) -> GemmPeak:
    """The best FLOP/s of `repeats` square GEMMs after a warm-up. The side is sized by time, not fixed: it doubles
    from MIN_SIDE up to `max_n` while all the GEMMs at the next size would still fit in `budget_s`, so a dtype
    the hardware runs slowly (bf16 without native support: ~0.15 GFLOP/s) is measured on small matrices in about
    the budget instead of minutes on large ones."""
    if max_n < MIN_SIDE or repeats <= 0 or budget_s <= 0:
        raise ValueError(f"measure_gemm_peak: need max_n >= {MIN_SIDE}, repeats and budget_s > 0")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"measure_gemm_peak: device {device} requested but CUDA is not available")
    timer = _time_cuda if device.type == "cuda" else _time_cpu
    n = MIN_SIDE
    matrices = _matrices(n, device, dtype)
    one = timer(*matrices, 1)[0]
    calls = repeats + (_CUDA_WARMUP if device.type == "cuda" else _CPU_WARMUP)  # per library
    # A GEMM twice the side does 8x the work.
    while 2 * n <= max_n and 8 * one * calls <= budget_s:
        n *= 2
        matrices = _matrices(n, device, dtype)
        one = timer(*matrices, 1)[0]
    seconds = timer(*matrices, repeats)
    flops = 2.0 * n**3
    samples = [flops / s for s in seconds]
    method = f"measured: best of {repeats} square GEMMs of side {n}"
    # oneDNN gets the same size and repeats as torch.matmul: each library its own budget, so the side (and the
    # figure, which depends on it) is what a torch.matmul-only measurement would pick.
    onednn_seconds = _time_onednn(*matrices[:2], repeats) if device.type == "cpu" else None
    if onednn_seconds is not None:
        onednn = [flops / s for s in onednn_seconds]
        winner = "oneDNN" if max(onednn) > max(samples) else "torch.matmul"
        samples += onednn
        method += f" by torch.matmul and {repeats} by oneDNN on a prepacked weight (the best: {winner})"
    return GemmPeak(
        flops_per_s=max(samples),
        samples=samples,
        n=n,
        dtype=str(dtype),
        device=str(device),
        threads=torch.get_num_threads(),
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        torch_version=torch.__version__,
        method=f"{method} (sized to a {budget_s:g} s budget, at most {max_n})",
        checked_at=time.time(),
    )


def _time_onednn(a: torch.Tensor, b: torch.Tensor, repeats: int) -> list[float] | None:
    """Seconds of `repeats` GEMMs by oneDNN on `b` reordered for it (the prepack lever's calls), or None where this
    torch build or CPU has no oneDNN path for the dtype (bfloat16 needs AVX-512 or AVX-NE-CONVERT). Each call
    allocates its output (the op has no `out=`): at the sides measured that is well under 1% of a GEMM."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = onednn_packed(b)
        onednn_linear(a, packed)  # the first warm-up call, and the test that oneDNN runs this dtype here
    except RuntimeError:
        return None
    return _wall_seconds(lambda: onednn_linear(a, packed), repeats, warmup=_CPU_WARMUP - 1)


def _matrices(n: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    return a, b, torch.empty(n, n, device=device, dtype=dtype)


def gemm_cache_path(device: torch.device | str, dtype: torch.dtype, cache_dir: Path | str) -> Path:
    """Cache file for this machine and software: any change in the key means a fresh measurement."""
    device = torch.device(device)
    parts = [
        machine_slug(),
        f"torch{torch.__version__}",
        f"t{torch.get_num_threads()}",
        str(dtype).removeprefix("torch."),
        device.type,
        torch.get_float32_matmul_precision(),  # TF32 on or off changes the fp32 figure on CUDA
    ]
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", "__".join(parts))
    return Path(cache_dir) / f"gemm_peak__{key}.json"


def _read_cache(path: Path) -> GemmPeak | None:
    try:
        return _parse_peak(path.read_bytes())
    except OSError:  # absent or unreadable
        return None


def _parse_peak(content: bytes) -> GemmPeak | None:
    """A cache file's figure, or None for one that is corrupt, from an older schema, or not a measurement
    (edited by hand, or sent by a worker): a NaN would never compare as worse, an infinity never as beaten,
    and a field of the wrong type would fail later, inside a result."""
    try:
        data = json.loads(content)
        # Fields a later recbench added are passed over: its figure still counts, rather than being taken for no
        # cache and overwritten by a lower one.
        peak = GemmPeak(**{name: value for name, value in data.items() if name in _PEAK_FIELDS})
    except (ValueError, TypeError, AttributeError):  # not JSON, a field missing or mistyped, not a mapping
        return None
    numbers = [peak.flops_per_s, *peak.samples] if isinstance(peak.samples, list) else []
    if not numbers or not all(_is_real(x) and 0 < x < math.inf for x in numbers):
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (peak.n, peak.threads)):
        return None
    if peak.checked_at is not None and not (_is_real(peak.checked_at) and math.isfinite(peak.checked_at)):
        return None
    return peak if all(isinstance(x, str) for x in (peak.dtype, peak.device, peak.method)) else None


_PEAK_FIELDS = frozenset(f.name for f in fields(GemmPeak))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _write_cache(path: Path, peak: GemmPeak) -> None:
    # Atomic, so a concurrent reader never sees a half-written file; a newer measurement replaces the old.
    atomic_write_json(path, asdict(peak), overwrite=True)


CACHE_FILE_PATTERN = "gemm_peak__*.json"
MAX_CACHE_FILE_BYTES = 64 * 1024  # a cache file is a few hundred bytes; anything larger is not one


def keep_if_better(path: Path, content: bytes) -> bool:
    """Write a GEMM-peak cache file that another process measured (a Ray worker's) to `path`, if it is one and
    beats the figure cached there, or is that figure checked later (_supersedes). True when written."""
    offered = _parse_peak(content) if len(content) <= MAX_CACHE_FILE_BYTES else None
    if offered is None:
        return False
    with updating(path):
        cached = _read_cache(path)
        if cached is not None and not _supersedes(offered, cached):
            return False
        _write_cache(path, offered)
        return True


def _supersedes(offered: GemmPeak, cached: GemmPeak) -> bool:
    """A higher figure, or the same figure checked more recently (a worker's measurement that it beat), though not
    from the future: a worker whose clock runs ahead would otherwise spare every later run its check."""
    if offered.flops_per_s != cached.flops_per_s:
        return offered.flops_per_s > cached.flops_per_s
    return (cached.checked_at or 0.0) < (offered.checked_at or 0.0) <= time.time() + CLOCK_SLACK_S


def cached_gemm_peak(
    device: torch.device | str,
    dtype: torch.dtype,
    cache_dir: Path | str,
    *,
    max_n: int = 2048,
    budget_s: float = DEFAULT_BUDGET_S,
    repeats: int = 5,
) -> GemmPeak:
    """The best GEMM throughput this machine has shown: measured now and compared with the cached best.

    A measurement taken while other work shares the cores reads low; keeping the best-ever figure means one
    busy run cannot lower the denominator of every later utilisation figure (a quiet run raises it).
    """
    fresh = measure_gemm_peak(device, dtype, max_n=max_n, budget_s=budget_s, repeats=repeats)
    return best_of(fresh, cache_dir)


def best_of(fresh: GemmPeak, cache_dir: Path | str) -> GemmPeak:
    """The better of a fresh measurement and the cached best for its key; a better fresh one is cached. A cached
    one that wins is stored again with the fresh one's `checked_at` (see recently_checked_peak)."""
    path = gemm_cache_path(fresh.device, getattr(torch, fresh.dtype.removeprefix("torch.")), cache_dir)
    with updating(path):  # two `recbench run`s on one machine (parallel CI jobs) finishing together keep the best
        cached = _read_cache(path)
        if cached is None or cached.flops_per_s < fresh.flops_per_s:
            _write_cache(path, fresh)
            return fresh
        if cached.checked_at != fresh.checked_at:  # the fresh reading is the latest check, even if a stamp was ahead
            cached = replace(cached, checked_at=fresh.checked_at)
            _write_cache(path, cached)
        return cached


def recently_checked_peak(
    device: torch.device | str, dtype: torch.dtype, cache_dir: Path | str, *, within_s: float = RECHECK_AFTER_S
) -> GemmPeak | None:
    """The cached best for this machine and software, if a measurement was compared with it less than `within_s`
    ago; None when there is none, it is older (or of unknown age), or it is not a measurement."""
    cached = _read_cache(gemm_cache_path(device, dtype, cache_dir))
    if cached is None or cached.checked_at is None:
        return None
    return cached if 0 <= time.time() - cached.checked_at < within_s else None
