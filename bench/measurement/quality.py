"""Ranking-quality figures from an evaluation's raw per-user outcomes: means, 95% bootstrap intervals, the chance
level of a uniformly random ranking, and p-values against it."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from bench.core.stats import BOOTSTRAP_SEED, bootstrap_mean_interval
from bench.loop.evaluation import PROTOCOL, EvaluationSamples
from bench.loop.ranking import chance_hit_rate, chance_ndcg
from bench.results.model import Interval, QualityEvaluation

SIGNIFICANCE = 0.05


def quality_evaluation(samples: EvaluationSamples, *, resamples: int) -> QualityEvaluation:
    n, k = samples.top_n, samples.candidates
    hits, ndcg = np.asarray(samples.hits, dtype=np.float64), np.asarray(samples.ndcg, dtype=np.float64)
    p_ndcg = ndcg_p_value(float(ndcg.mean()), users=ndcg.size, top_n=n, candidates=k)
    return QualityEvaluation(
        protocol=PROTOCOL,
        users=len(samples.user_ids),
        candidates=k,
        top_n=n,
        user_ids=samples.user_ids,
        hits=samples.hits,
        ndcg=samples.ndcg,
        hit_rate=float(hits.mean()),
        hit_rate_ci=wilson_interval(int(hits.sum()), hits.size),
        ndcg_mean=float(ndcg.mean()),
        ndcg_ci=Interval(**_interval(ndcg, resamples)),
        chance_hit_rate=chance_hit_rate(n, k),
        chance_ndcg=chance_ndcg(n, k),
        p_value_ndcg=p_ndcg,
        p_value_hit_rate=binomial_p_value(int(hits.sum()), hits.size, chance_hit_rate(n, k)),
        above_chance=p_ndcg < SIGNIFICANCE,
        seconds=samples.seconds,
    )


def binomial_p_value(successes: int, trials: int, chance: float) -> float:
    """One-sided exact binomial p-value of at least `successes` hits when each hits with probability `chance`."""
    from scipy import stats  # here, not at the top: scipy.stats takes ~0.45 s to import, and most runs never get here

    return float(stats.binomtest(successes, trials, chance, alternative="greater").pvalue)


def _interval(values: np.ndarray, resamples: int) -> dict[str, float]:
    low, high = bootstrap_mean_interval(values.tolist(), resamples=resamples)
    return {"low": low, "high": high}


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of a proportion (Wilson 1927): unlike a bootstrap, not empty when every user hit or
    every user missed."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return Interval(low=centre - half, high=centre + half, confidence=confidence, method="Wilson score interval")


# Below this many (users x draws), the null distribution of the mean NDCG is simulated rather than approximated.
EXACT_NULL_DRAWS = 20_000
MAX_SIMULATED_VALUES = 20_000_000


def ndcg_p_value(mean_ndcg: float, *, users: int, top_n: int, candidates: int) -> float:
    """One-sided p-value of a mean NDCG@top_n this high under a uniformly random ranking. Under that null the
    held-out item's rank is uniform over the candidates, so each user's NDCG is one of `candidates` known values,
    equally likely. Up to 1,000 users the mean over users is simulated (20,000 draws, a fixed seed); beyond, the
    central limit theorem makes it normal with the exact null mean and variance (a z-test)."""
    gains = np.array([1.0 / math.log2(rank + 2) if rank < top_n else 0.0 for rank in range(candidates)])
    mean, variance = gains.mean(), gains.var()
    if variance == 0:  # one candidate: every ranking scores the same
        return 1.0
    if users * EXACT_NULL_DRAWS <= MAX_SIMULATED_VALUES:
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        null_means = gains[rng.integers(0, candidates, (EXACT_NULL_DRAWS, users))].mean(axis=1)
        # (count + 1) / (draws + 1): a simulated p-value is never exactly 0 (Davison and Hinkley 1997, eq. 4.11).
        return float((np.sum(null_means >= mean_ndcg - 1e-12) + 1) / (EXACT_NULL_DRAWS + 1))
    z = (mean_ndcg - mean) / math.sqrt(variance / users)
    return 0.5 * math.erfc(z / math.sqrt(2))  # the upper tail; erfc keeps its precision far out (1 - cdf would not)
