"""A same-run probe of how fast this machine does host-side work right now, against the best it has shown.

Host stages (gathering histories, the interest sum, retrieval over a small catalogue, ranking) are short runs of
small tensor operations and Python, bound by the CPU's clock and the interpreter rather than by GEMM throughput.
A VM's speed at such work drifts between runs (10-20% on this project's 2-vCPU machines, measured 2026-11), and a
projection onto a GPU tier carries host time over: without a correction, two runs of the same scenario project
a GPU 10-40% apart. The probe runs a fixed piece of host-like work before and after the timed batches; the cached
best of this machine (per machine key, like the GEMM peak) says how much slower this run's host was than it can
be, and projections divide that drift out.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.io import atomic_write_json
from bench.hardware.environment import machine_slug

# The probe's unit of work: one quickstart-sized batch of the host stages (4 users, 20 history items, a catalogue
# of 2,000 items of dimension 64, top 20), plus the list conversions the loop does per batch.
USERS, HISTORY, ITEMS, DIM, TOP = 4, 20, 2000, 64, 20
BLOCKS = 9
BLOCK_S = 0.012  # each block is sized to about this long: the probe costs ~0.1 s, twice per point
UNIT = f"{USERS} users x {HISTORY} history items, {ITEMS} x {DIM} catalogue, top {TOP}"


@dataclass
class HostProbe:
    seconds_per_unit: float  # median over blocks of each block's mean unit time
    samples: list[float]  # each block's mean unit time, s
    unit: str = UNIT
    method: str = f"median of {BLOCKS} blocks of host-like work of about {BLOCK_S * 1e3:g} ms each (host_probe.py)"


def measure_host_probe(blocks: int = BLOCKS, units_per_block: int | None = None) -> HostProbe:
    generator = torch.Generator().manual_seed(0)
    catalogue = torch.randn(ITEMS, DIM, generator=generator)
    history = torch.randint(0, ITEMS, (USERS, HISTORY), generator=generator)
    weights = torch.rand(USERS, HISTORY, generator=generator)
    _unit(catalogue, history, weights)  # warm-up: first calls allocate
    started = time.perf_counter()
    _unit(catalogue, history, weights)
    one = time.perf_counter() - started
    # Sized by time, so that a busy machine (units 10x slower) does not make every point's probe 10x longer.
    units_per_block = units_per_block or max(3, min(100, round(BLOCK_S / max(one, 1e-6))))
    samples = []
    for _ in range(blocks):
        started = time.perf_counter()
        for _ in range(units_per_block):
            _unit(catalogue, history, weights)
        samples.append((time.perf_counter() - started) / units_per_block)
    return HostProbe(seconds_per_unit=statistics.median(samples), samples=samples)


def _unit(catalogue: torch.Tensor, history: torch.Tensor, weights: torch.Tensor) -> list[list[int]]:
    interest = (catalogue[history] * weights.unsqueeze(-1)).sum(dim=1)
    seen = torch.zeros(USERS, ITEMS, dtype=torch.bool).scatter_(1, history, True)
    scores = (interest @ catalogue.T).masked_fill(seen, float("-inf"))
    top = scores.topk(TOP, dim=1).indices
    return [row[mask].tolist() for row, mask in zip(history, weights > 0.5, strict=True)] + top.tolist()


def best_host_probe(fresh: float, cache_dir: Path | str) -> float:
    """The fastest unit time this machine has shown (cached per machine key and torch version); a faster fresh
    figure replaces it."""
    path = Path(cache_dir) / f"host-probe-{machine_slug()}-torch{torch.__version__}.json"
    try:
        best = float(json.loads(path.read_text(encoding="utf-8"))["seconds_per_unit"])
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: start over
        best = float("inf")
    if fresh < best:
        atomic_write_json(path, {"seconds_per_unit": fresh, "unit": UNIT}, overwrite=True)
        return fresh
    return best


def probe_summary(before: HostProbe, after: HostProbe, cache_dir: Path | str) -> dict[str, object]:
    """What a result keeps: this run's unit time (the mean of the probes before and after the timed batches),
    both probes' samples, and the machine's best."""
    run = (before.seconds_per_unit + after.seconds_per_unit) / 2
    return {
        "seconds_per_unit": run,
        "samples_before": before.samples,
        "samples_after": after.samples,
        "best_seconds_per_unit": best_host_probe(min(before.seconds_per_unit, after.seconds_per_unit), cache_dir),
        "unit": before.unit,
        "method": before.method + "; run figure: mean of the probes before and after the timed batches",
    }
