"""Summary statistics computed from raw samples.

Trackers hand back raw samples; every figure in a report is derived here so that percentiles and
spread are computed one way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(kw_only=True)
class Summary:
    """Descriptive statistics of one sample set, in the samples' own unit."""

    n: int
    mean: float
    stdev: float  # sample standard deviation (ddof=1); 0.0 when n < 2
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    cv: float  # stdev / mean; nan when mean is 0 (spread relative to nothing is undefined)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


# Below this many samples a p99 is one of the few largest (with 20 it is the maximum): verdicts, plans and SLO
# checks resting on it are flagged as weak.
MIN_SAMPLES_FOR_P99 = 100


def typical_batch(samples: Sequence[float], window: int = 1) -> float:
    """A typical batch's time: the median over batches, or with `window` > 1 (batches bucketed by prompt length
    within windows, so short and long batches alternate by design) the median over windows of each window's
    mean batch: robust to noise like a median, and unbiased by bucketing. An incomplete last window is left out
    when a complete one exists."""
    if window <= 1 or len(samples) < window:
        return float(np.median(samples))
    complete = len(samples) // window * window
    means = [float(np.mean(samples[i : i + window])) for i in range(0, complete, window)]
    return float(np.median(means))


def summarize(samples: Sequence[float]) -> Summary:
    """Summarise raw samples; percentiles use numpy's linear interpolation.

    Raises ValueError on an empty sequence: a summary of nothing would silently report zeros.
    """
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"summarize expects a flat sequence of numbers, got shape {values.shape}")
    n = int(values.size)
    if n == 0:
        raise ValueError("summarize needs at least one sample, got none")
    mean = float(values.mean())
    stdev = float(values.std(ddof=1)) if n >= 2 else 0.0
    p50, p90, p99 = (float(p) for p in np.percentile(values, [50, 90, 99], method="linear"))
    cv = stdev / mean if mean != 0 else float("nan")
    return Summary(
        n=n,
        mean=mean,
        stdev=stdev,
        min=float(values.min()),
        max=float(values.max()),
        p50=p50,
        p90=p90,
        p99=p99,
        cv=cv,
    )


BOOTSTRAP_SEED = 20261129  # fixed: the same samples give the same interval


def bootstrap_mean_interval(
    samples: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (samples resampled with replacement, a fixed seed)."""
    values = np.asarray(samples, dtype=np.float64)
    if values.size == 0:
        raise ValueError("bootstrap_mean_interval needs at least one sample")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    # In chunks of at most ~4M drawn indices: 10,000 users x 2,000 resamples at once would take 160 MB.
    per_chunk = max(1, 4_000_000 // values.size)
    means = np.concatenate(
        [
            values[rng.integers(0, values.size, (min(per_chunk, resamples - done), values.size))].mean(axis=1)
            for done in range(0, resamples, per_chunk)
        ]
    )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_difference_interval(
    baseline: Sequence[float], current: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean of current - baseline over paired samples (the same users), with its percentile bootstrap interval:
    pairs are resampled together, so what both sides share (an easy user) cancels out."""
    a, b = np.asarray(baseline, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_difference_interval needs equal, non-empty sample sets ({a.size} vs {b.size})")
    low, high = bootstrap_mean_interval(b - a, resamples=resamples, confidence=confidence)
    return float((b - a).mean()), low, high
