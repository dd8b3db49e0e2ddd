"""`compare_results`: pair two sets of results and judge every metric of every pair.

Per metric: the ratio current / baseline; for latency quantiles (and throughput, which is batch size over the
median end-to-end latency) a bootstrap confidence interval of the quantile's relative change, from the raw
per-batch samples; the verdict is "same" unless the change is at least `min_effect` and, where there is an
interval, the interval excludes 0. Sample sets with fewer than 5 samples or a coefficient of variation above 10%,
and a p99 from fewer than 100 samples, make the verdicts that rest on them weak, and say so. Results measured on
different hardware (fingerprints) are compared only when asked, and the pair says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.compare.metrics import MetricSpec, canonical_name, metrics_for, stage_samples
from bench.compare.pairing import PairKey, Side, load_side, pair_sides
from bench.compare.stats import (
    NO_TEST,
    TEST_NAME,
    QuantileChange,
    check_alpha,
    classify,
    geometric_mean,
    noise_problem,
    quantile_change,
    ratio,
)
from bench.core.errors import InputError
from bench.core.stages import Stage
from bench.core.stats import MIN_SAMPLES_FOR_P99
from bench.results.reader import StoredResult, scenario_edit


@dataclass(frozen=True, kw_only=True)
class MetricComparison:
    spec: MetricSpec
    baseline: float
    current: float
    ratio: float  # current / baseline
    test: QuantileChange | None  # None: a scalar metric, no significance test
    significant: bool | None  # the interval excludes 0; None without a test
    direction: int  # +1 up, -1 down, 0 same (after the min-effect and significance rules)
    assessment: str  # "worse", "better" or "same"
    weak: bool  # rests on a noisy or small sample set
    detail: str | None = None  # e.g. the tier a cost is for, or the energy method
    # Inverse metrics (throughput = requests per batch / p50): current's requests per batch over baseline's.
    scale: float = 1.0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def change(self) -> float:
        """Relative change, current / baseline - 1."""
        return self.ratio - 1

    @property
    def verdict(self) -> str:
        """ "slower" / "faster" / "same" for latency; "higher" / "lower" for throughput and cost; "more" /
        "less" for memory, FLOPs and energy."""
        return {1: self.spec.up, -1: self.spec.down, 0: "same"}[self.direction]

    @property
    def test_description(self) -> str:
        if self.test is None:
            return NO_TEST
        return f"{TEST_NAME} on the {self.spec.samples_stage} samples"

    @property
    def interval(self) -> tuple[float, float] | None:
        """The metric's own relative change interval (for throughput, the inverse of the p50's, times the ratio
        of requests per batch)."""
        return None if self.test is None else _interval(self.spec, self.test, self.scale)


@dataclass(kw_only=True)
class Pair:
    scenario: str
    point: str
    baseline: StoredResult
    current: StoredResult
    metrics: list[MetricComparison]
    warnings: list[str] = field(default_factory=list)  # noise: weak verdicts
    notes: list[str] = field(default_factory=list)  # metrics only one side has, different machines

    @property
    def hardware_differs(self) -> bool:
        return self.baseline.result.environment.fingerprint.digest != self.current.result.environment.fingerprint.digest

    @property
    def key(self) -> PairKey:
        return (self.scenario, self.point)

    @property
    def label(self) -> str:
        return f"{self.scenario} [{self.point}]"

    def metric(self, name: str) -> MetricComparison | None:
        name = canonical_name(name)
        return next((m for m in self.metrics if m.name == name), None)


@dataclass(kw_only=True)
class Comparison:
    pairs: list[Pair]
    unmatched_baseline: list[StoredResult]  # points with no current result
    unmatched_current: list[StoredResult]  # points with no baseline
    superseded: list[tuple[str, StoredResult, list[StoredResult]]]  # (side, used, older ones not used)
    min_effect: float
    alpha: float
    test: str = TEST_NAME

    @property
    def end_to_end_p50_geomean(self) -> float | None:
        """Geometric mean over pairs of the end_to_end p50 ratio (current / baseline)."""
        ratios = [m.ratio for p in self.pairs if (m := p.metric(f"latency.{Stage.END_TO_END}.p50")) is not None]
        return geometric_mean(ratios)

    @property
    def geomean_pairs(self) -> int:
        return sum(1 for p in self.pairs if p.metric(f"latency.{Stage.END_TO_END}.p50") is not None)


def compare_results(
    baseline: Sequence[Path],
    current: Sequence[Path],
    *,
    min_effect: float = 0.05,
    alpha: float = 0.05,
    strict: bool = False,
) -> Comparison:
    """Compare result files (or folders of them): pair by (scenario name, point key), newest per key.

    Raises InputError (one line naming the file or option) for unreadable results, an empty side, or
    min_effect / alpha out of range.
    """
    if not (isinstance(min_effect, (int, float)) and 0 <= min_effect < 10):
        raise InputError(f"--min-effect: {min_effect!r} must be a non-negative fraction (e.g. 0.05 for 5%)")
    alpha = check_alpha(alpha)
    base_side = load_side(baseline, name="baseline", strict=strict)
    cur_side = load_side(current, name="current", strict=strict)
    matched, only_base, only_cur = pair_sides(base_side, cur_side)
    pairs = [
        compare_pair(base_side.chosen[key], cur_side.chosen[key], min_effect=min_effect, alpha=alpha) for key in matched
    ]
    return Comparison(
        pairs=pairs,
        unmatched_baseline=only_base,
        unmatched_current=only_cur,
        superseded=_superseded(base_side) + _superseded(cur_side),
        min_effect=float(min_effect),
        alpha=alpha,
    )


def _inverse(change: float, scale: float = 1.0) -> float:
    """The relative change of scale/x for a relative change of x."""
    return scale / (1 + change) - 1 if change > -1 else math.inf


def _interval(spec: MetricSpec, test: QuantileChange, scale: float) -> tuple[float, float]:
    """The metric's relative change interval from its quantile's: inverted and scaled for inverse metrics."""
    if not spec.inverse:
        return (test.low, test.high)
    return (_inverse(test.high, scale), _inverse(test.low, scale))


def _fingerprint_notes(baseline: StoredResult, current: StoredResult) -> list[str]:
    base = baseline.result.environment.fingerprint.as_fingerprint()
    cur = current.result.environment.fingerprint.as_fingerprint()
    differences = base.differences(cur)
    if not differences:
        return []
    return [
        f"measured on different {'hardware' if base.digest != cur.digest else 'software'}: "
        f"{'; '.join(differences)} (baseline: {base.describe()}; current: {cur.describe()})"
    ]


def _spec_notes(baseline: StoredResult, current: StoredResult) -> list[str]:
    """Results paired by scenario name and point whose resolved scenarios differ (another model, batch size...):
    said, since a change then measures the edit, not a regression."""
    edit = scenario_edit(baseline, current)
    return [f"the scenarios differ ({edit}): the change includes that edit"] if edit else []


def _superseded(side: Side) -> list[tuple[str, StoredResult, list[StoredResult]]]:
    return [(side.name, side.chosen[key], older) for key, older in sorted(side.superseded.items())]


def compare_pair(baseline: StoredResult, current: StoredResult, *, min_effect: float, alpha: float) -> Pair:
    specs, notes = metrics_for(baseline, current)
    notes[:0] = _fingerprint_notes(baseline, current) + _spec_notes(baseline, current)
    weak_stages: set[Stage] = set()
    warnings: list[str] = []
    for side, result in (("baseline", baseline), ("current", current)):
        problems = []
        for stage in dict.fromkeys(s.samples_stage for s in specs if s.samples_stage):
            problem = noise_problem(stage_samples(result, stage) or [])
            if problem:
                weak_stages.add(stage)
                problems.append(f"{stage} ({problem})")
        if problems:
            warnings.append(
                f"{side} {result.path.name}: noisy samples in {', '.join(problems)}: verdicts on "
                f"{'this stage' if len(problems) == 1 else 'these stages'} are weak"
            )
        warnings += [f"{side} {result.path.name}: {w.kind}: {w.message}" for w in result.result.warnings]
    metrics = []
    for spec in specs:
        base_value, cur_value = spec.value(baseline), spec.value(current)
        assert base_value is not None and cur_value is not None  # metrics_for kept only metrics both have
        test = significant = None
        weak = spec.samples_stage in weak_stages
        scale = current.result.requests_per_batch / baseline.result.requests_per_batch if spec.inverse else 1.0
        # A load test's throughput is served queries over its wall time, not batch over p50: no interval from p50s.
        from_p50s = not (spec.inverse and (baseline.result.load or current.result.load))
        if spec.samples is not None and spec.quantile is not None and from_p50s:
            base_samples, cur_samples = spec.samples(baseline) or [], spec.samples(current) or []
            test = quantile_change(base_samples, cur_samples, quantile=spec.quantile, alpha=alpha)
            low, high = _interval(spec, test, scale)
            significant = low > 0 or high < 0
            # A p99 from few samples is one of the largest few: the interval is wide, the verdict weak.
            weak = weak or (spec.quantile > 0.9 and min(len(base_samples), len(cur_samples)) < MIN_SAMPLES_FOR_P99)
        value_ratio = ratio(base_value, cur_value)
        direction, assessment = classify(
            value_ratio, higher_is_worse=spec.higher_is_worse, min_effect=min_effect, significant=significant
        )
        details = [d for d in (spec.detail(baseline), spec.detail(current)) if d] if spec.detail else []
        detail = details[0] if len(set(details)) == 1 else " vs ".join(details) if details else None
        metrics.append(
            MetricComparison(
                spec=spec,
                baseline=base_value,
                current=cur_value,
                ratio=value_ratio,
                test=test,
                significant=significant,
                direction=direction,
                assessment=assessment,
                weak=weak,
                detail=detail,
                scale=scale,
            )
        )
    scenario, point = current.key
    return Pair(
        scenario=scenario,
        point=point,
        baseline=baseline,
        current=current,
        metrics=metrics,
        warnings=warnings,
        notes=notes,
    )
