"""The statistics behind `recbench compare` and `recbench check`: the significance test on raw samples, the
noise rules, the verdict rule and the geometric mean.

Verdict rule: a change counts only when it is at least `min_effect` (relative) AND, for metrics with raw
samples, significant (p < alpha); otherwise the verdict is "same". Scalar metrics (one value per result:
memory, FLOPs, energy, cost) have no test: only the min-effect rule applies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from bench.core.errors import InputError
from bench.core.stats import summarize

TEST_NAME = "Mann-Whitney U (two-sided)"
TEST_SHORT = "Mann-Whitney"
NO_TEST = "no significance test (single value)"
NOISY_CV = 0.10  # a sample set with a coefficient of variation above this is noisy
MIN_SAMPLES = 5  # fewer samples than this: any verdict on them is weak


@dataclass(frozen=True)
class TestResult:
    """A two-sided Mann-Whitney U test of baseline against current samples."""

    statistic: float
    p_value: float  # 1.0 when the test cannot tell anything (e.g. identical constant samples)
    n_baseline: int
    n_current: int


def mann_whitney(baseline: Sequence[float], current: Sequence[float]) -> TestResult:
    """Two-sided Mann-Whitney U test (scipy's automatic exact/asymptotic choice, ties corrected).

    It tests whether one sample set tends to be larger than the other (a shift of the distribution); it makes
    no assumption of normality, which batch latencies (right-skewed, with outliers) rarely satisfy.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(current, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("mann_whitney needs samples on both sides")
    result = mannwhitneyu(a, b, alternative="two-sided")
    p = float(result.pvalue)
    return TestResult(
        statistic=float(result.statistic),
        p_value=1.0 if math.isnan(p) else p,
        n_baseline=int(a.size),
        n_current=int(b.size),
    )


def noise_problem(samples: Sequence[float]) -> str | None:
    """Why a sample set makes a weak verdict (too few samples, or cv above 10%), or None when it is fine."""
    if len(samples) < MIN_SAMPLES:
        return f"only {len(samples)} sample{'s' if len(samples) != 1 else ''} (< {MIN_SAMPLES})"
    cv = summarize(samples).cv
    if math.isnan(cv) or cv > NOISY_CV:
        return f"cv {cv:.0%} > {NOISY_CV:.0%}" if not math.isnan(cv) else "cv undefined (mean 0)"
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


def format_p(p: float) -> str:
    return "p<1e-10" if p < 1e-10 else f"p={p:.2g}"
