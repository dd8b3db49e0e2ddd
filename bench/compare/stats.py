"""The statistics behind `recbench compare` and `recbench check`: a bootstrap confidence interval of the change in
a quantile, the noise rules, the verdict rule and the geometric mean.

A latency metric is a quantile (p50, p99) of the raw per-batch samples; what a regression check asks is whether
that quantile moved. A location test such as Mann-Whitney answers another question (whether one set tends to be
larger) and cannot see a change in the tail. So both sample sets are resampled with replacement (a fixed seed:
the same inputs give the same interval), the quantile is taken of each resample, and the percentile interval
of the relative change current/baseline - 1 is reported. The change is significant when the interval excludes 0.

Verdict rule: a change counts only when it is at least `min_effect` (relative) AND, for metrics with raw
samples, significant; otherwise the verdict is "same". Scalar metrics (one value per result: memory, FLOPs,
energy, cost) have no interval: only the min-effect rule applies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bench.core.errors import InputError
from bench.core.formatting import format_percent
from bench.core.stats import BOOTSTRAP_SEED, summarize

TEST_NAME = "bootstrap interval of the quantile's change"
TEST_SHORT = "CI"
NO_TEST = "no significance test (single value)"
NOISY_CV = 0.10  # a sample set with a coefficient of variation above this is noisy
MIN_SAMPLES = 5  # fewer samples than this: any verdict on them is weak
RESAMPLES = 2000
SEED = BOOTSTRAP_SEED


@dataclass(frozen=True)
class QuantileChange:
    """The bootstrap percentile interval of current/baseline - 1 for one quantile."""

    quantile: float  # 0.5 for p50, 0.99 for p99
    low: float
    high: float
    confidence: float  # e.g. 0.95
    n_baseline: int
    n_current: int
    resamples: int = RESAMPLES

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def describe(self) -> str:
        return (
            f"{self.confidence:.0%} CI [{format_percent(self.low, signed=True)}, "
            f"{format_percent(self.high, signed=True)}]"
        )


def quantile_change(
    baseline: Sequence[float], current: Sequence[float], *, quantile: float, alpha: float
) -> QuantileChange:
    """Bootstrap the relative change of a quantile (percentile interval at 1 - alpha)."""
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("quantile_change needs samples on both sides")
    rng = np.random.default_rng(SEED)
    q = 100 * quantile
    base = np.percentile(a[rng.integers(0, a.size, (RESAMPLES, a.size))], q, axis=1)
    cur = np.percentile(b[rng.integers(0, b.size, (RESAMPLES, b.size))], q, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        changes = cur / base - 1
    changes = changes[np.isfinite(changes)]
    if changes.size == 0:
        return QuantileChange(quantile, -math.inf, math.inf, 1 - alpha, int(a.size), int(b.size))
    low, high = np.percentile(changes, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return QuantileChange(quantile, float(low), float(high), 1 - alpha, int(a.size), int(b.size))


def noise_problem(samples: Sequence[float]) -> str | None:
    """Why a sample set makes a weak verdict (too few samples, or cv above 10%), or None when it is fine."""
    if len(samples) < MIN_SAMPLES:
        return f"only {len(samples)} sample{'s' if len(samples) != 1 else ''} (< {MIN_SAMPLES})"
    cv = summarize(samples).cv
    if math.isnan(cv) or cv > NOISY_CV:
        # One decimal: a cv of 10.4% would read "cv 10% > 10%" in whole percent.
        return f"cv {cv:.1%} > {NOISY_CV:.0%}" if not math.isnan(cv) else "cv undefined (mean 0)"
    return None


def ratio(baseline: float, current: float) -> float:
    """current / baseline; 1.0 when both are 0, inf when only the baseline is 0."""
    if baseline == 0:
        return 1.0 if current == 0 else math.copysign(math.inf, current)
    return current / baseline


def classify(
    value_ratio: float, *, higher_is_worse: bool, min_effect: float, significant: bool | None
) -> tuple[int, str]:
    """(direction, assessment): direction +1 up, -1 down, 0 same; assessment "worse", "better" or "same".

    `significant` is None for scalar metrics (no test): then only the min-effect rule applies.
    """
    change = value_ratio - 1
    if significant is False or not abs(change) >= min_effect or change == 0:
        return 0, "same"
    direction = 1 if change > 0 else -1
    worse = (direction > 0) == higher_is_worse
    return direction, "worse" if worse else "better"


def geometric_mean(ratios: Iterable[float]) -> float | None:
    """exp(mean(log r)) over finite positive ratios; None when there are none."""
    logs = [math.log(r) for r in ratios if r > 0 and math.isfinite(r)]
    return math.exp(sum(logs) / len(logs)) if logs else None


def parse_fraction(text: str, *, what: str) -> float:
    """A relative amount written as a percentage ("5%", "12.5%") or a fraction below 1 ("0.05").

    A bare number of 1 or more ("5") is refused: 5% or 500% cannot be told apart.
    """
    raw = str(text).strip()
    if not raw:
        raise InputError(f"{what}: empty; write a percentage such as 5%")
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise InputError(f"{what}: {raw!r} is not a percentage; write e.g. 5% (or the fraction 0.05)") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{what}: {raw!r} must be a finite, non-negative percentage such as 5%")
    if percent:
        return value / 100
    if value >= 1:
        raise InputError(f"{what}: {raw!r} is ambiguous; write {value:g}% (or a fraction below 1, e.g. 0.05)")
    return value


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError(f"--alpha: {alpha!r} must be between 0 and 1 (e.g. 0.05)")
    return float(alpha)
