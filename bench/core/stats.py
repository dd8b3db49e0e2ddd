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
