"""Regression gates: `recbench check --baseline B --fail-on "latency.p99:10%,memory.peak_rss:5%" RESULTS...`.

A gate `METRIC:PERCENT` fails on a pair of results when the metric got worse by more than PERCENT and, for
metrics with raw samples (latency, throughput), the change is significant: the bootstrap interval of the quantile's
change, over the batches of one run per side, excludes zero. Run-to-run drift of the machine is not in that
interval, so PERCENT must exceed it (`make regress` gates the p50 at 50% on a noisy 2-core VM).
Scalar metrics (memory, FLOPs, energy, cost) have one value per result: the threshold alone decides. A gate
whose metric a pair does not have (e.g. memory.cuda_peak on a CPU run, cost without a catalogue tier) is
skipped for that pair, with a line saying so. Metric names: see bench.compare.metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.compare.comparison import Comparison, MetricComparison, Pair, compare_results
from bench.compare.metrics import METRIC_HELP, MetricSpec, resolve_metric
from bench.compare.stats import TEST_SHORT, parse_fraction
from bench.core.errors import InputError
from bench.core.formatting import format_percent

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass(frozen=True, kw_only=True)
class GateOutcome:
    gate: Gate
    pair: Pair
    status: str  # "pass", "fail" or "skip"
    comparison: MetricComparison | None  # None when skipped
    reason: str  # why it skipped, or the figures: change, test and p-value
    verdict: str = ""  # after the figures, e.g. "> 10% limit"

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        """E.g. `FAIL quickstart [default] latency.p99: 120.3 ms -> 161.0 ms (+33.8%, Mann-Whitney p=0.0002)`."""
        head = f"{self.status.upper()} {self.pair.label} {self.gate.metric}"
        if self.comparison is None:
            return f"{head}: {self.reason}"
        m = self.comparison
        tail = f" {self.verdict}" if self.verdict else ""
        return f"{head}: {m.spec.format(m.baseline)} -> {m.spec.format(m.current)} ({self.reason}){tail}"


@dataclass(frozen=True)
class Gate:
    """Fail when `metric` got worse by more than `threshold` (a fraction: 0.10 for 10%), significantly where
    the metric has samples."""

    metric: str  # as written: latency.p99, latency.scoring.p99, memory.peak_rss, ...
    threshold: float

    @property
    def spec(self) -> MetricSpec:
        spec = resolve_metric(self.metric)
        if spec is None:
            raise InputError(f"--fail-on: unknown metric {self.metric!r}; known: {METRIC_HELP}")
        return spec

    def evaluate(self, pair: Pair) -> GateOutcome:
        spec = self.spec
        values = {"baseline": spec.value(pair.baseline), "current result": spec.value(pair.current)}
        if all(v is None for v in values.values()):
            return GateOutcome(
                gate=self, pair=pair, status=SKIP, comparison=None, reason="not measured in either result"
            )
        # A gate that cannot see its metric must not pass: a value missing on one side, or not a number.
        missing = [side for side, v in values.items() if v is None]
        broken = [side for side, v in values.items() if v is not None and not math.isfinite(v)]
        if missing or broken:
            reason = f"missing in the {missing[0]}" if missing else f"not a number in the {broken[0]}"
            if missing == ["baseline"]:  # e.g. a metric newer than the baseline: re-saving it fixes this
                reason += " (saved before recbench recorded it? re-save the baseline)"
            return GateOutcome(gate=self, pair=pair, status=FAIL, comparison=None, reason=reason)
        m = pair.metric(spec.name)
        assert m is not None  # both sides have a finite value
        worse_by = m.change if spec.higher_is_worse else -m.change
        figures = format_percent(m.change, signed=True)
        if m.test is not None and m.interval is not None:
            low, high = m.interval
            figures += (
                f", {m.test.confidence:.0%} {TEST_SHORT} [{format_percent(low, signed=True)}, "
                f"{format_percent(high, signed=True)}]"
            )
        else:
            figures += ", single value, no significance test"
        if m.weak:
            figures += ", weak statistics (few or noisy samples)"
        over = worse_by > self.threshold
        limit = format_percent(self.threshold)
        if over and m.significant is not False:
            status, verdict = FAIL, f"worse by more than {limit}"
        elif over:
            status, verdict = PASS, f"over {limit} but not significant"
        else:
            status, verdict = PASS, f"within {limit}"
        return GateOutcome(gate=self, pair=pair, status=status, comparison=m, reason=figures, verdict=verdict)


def parse_gates(text: str) -> list[Gate]:
    """`"latency.p99:10%,memory.peak_rss:5%"` -> gates; InputError (one line) for an empty list, an empty
    entry, a missing or bad percentage, or an unknown metric."""
    if not text or not text.strip():
        raise InputError("--fail-on: empty; write METRIC:PERCENT[,METRIC:PERCENT...], e.g. latency.p99:10%")
    gates = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            raise InputError(f"--fail-on: empty entry in {text!r}; separate METRIC:PERCENT entries by single commas")
        metric, colon, threshold = entry.partition(":")
        metric = metric.strip()
        if not colon:
            raise InputError(f"--fail-on: {entry!r} has no threshold; write METRIC:PERCENT, e.g. {metric}:10%")
        spec = resolve_metric(metric)
        if spec is None:
            raise InputError(f"--fail-on: unknown metric {metric!r}; known: {METRIC_HELP}")
        if any(gate.spec.name == spec.name for gate in gates):
            raise InputError(f"--fail-on: {metric} is gated twice; give each metric one threshold")
        gates.append(Gate(metric=metric, threshold=parse_fraction(threshold, what=f"--fail-on: {metric}")))
    return gates


@dataclass
class CheckReport:
    comparison: Comparison
    gates: list[Gate]
    outcomes: list[GateOutcome]

    @property
    def failures(self) -> list[GateOutcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def checked(self) -> int:
        return sum(1 for o in self.outcomes if o.status != SKIP)

    @property
    def passed(self) -> bool:
        # A check in which no gate saw its metric (memory.cuda_peak on a CPU runner) has verified nothing.
        return not self.failures and self.checked > 0

    def lines(self) -> list[str]:
        """FAIL lines first, then warnings, notes, skipped gates and unmatched points, then the summary line."""
        out = [o.line() for o in self.failures]
        out += [f"WARNING {pair.label}: {warning}" for pair in self.comparison.pairs for warning in pair.warnings]
        # Notes say what else differs between the two sides (hardware, the scenario itself) and explain a failure.
        out += [f"NOTE {pair.label}: {note}" for pair in self.comparison.pairs for note in pair.notes]
        out += [o.line() for o in self.outcomes if o.status == SKIP]
        c = self.comparison
        out += [f"UNMATCHED {r.label}: in the baseline only ({r.path})" for r in c.unmatched_baseline]
        out += [f"UNMATCHED {r.label}: no baseline for it ({r.path})" for r in c.unmatched_current]
        checked = self.checked
        if self.failures:
            out.append(f"{len(self.failures)} of {checked} gate check(s) failed on {len(c.pairs)} matched point(s)")
            return out
        if not checked:
            out.append(f"no gate measured anything on {len(c.pairs)} matched point(s): nothing was checked")
            return out
        for pair in c.pairs:
            figures = [
                f"{o.gate.metric} {format_percent(o.comparison.change, signed=True)}"
                + (" (not significant)" if o.verdict.startswith("over") else "")
                for o in self.outcomes
                if o.pair is pair and o.comparison is not None
            ]
            out.append(f"PASS {pair.label}: {', '.join(figures) or 'no gated metric measured'}")
        out.append(f"PASS: {checked} gate check(s) on {len(c.pairs)} matched point(s), none failed")
        return out


def check_results(
    baseline: Sequence[Path],
    current: Sequence[Path],
    *,
    fail_on: str | Sequence[Gate],
    min_effect: float = 0.05,
    alpha: float = 0.05,
    strict: bool = False,
    allow_different_hardware: bool = False,
) -> CheckReport:
    """Compare and evaluate every gate on every matched pair. InputError when no point matches (a gate that
    checked nothing must not pass), and when a pair was measured on different hardware, unless allowed: a
    timing from another CPU is not a regression."""
    gates = parse_gates(fail_on) if isinstance(fail_on, str) else list(fail_on)
    if not gates:
        raise InputError("--fail-on: no gates given")
    comparison = compare_results(baseline, current, min_effect=min_effect, alpha=alpha, strict=strict)
    if not comparison.pairs:
        unmatched = ", ".join(r.label for r in comparison.unmatched_current)
        raise InputError(
            f"no result matches a baseline point by (scenario, point): current has {unmatched}; "
            f"baseline has {', '.join(r.label for r in comparison.unmatched_baseline)}"
        )
    foreign = [pair for pair in comparison.pairs if pair.hardware_differs]
    if foreign and not allow_different_hardware:
        pair = foreign[0]
        base = pair.baseline.result.environment.fingerprint.as_fingerprint()
        cur = pair.current.result.environment.fingerprint.as_fingerprint()
        raise InputError(
            f"--baseline: {pair.label} was measured on different hardware ({'; '.join(base.differences(cur))}): "
            "a timing from another machine is not a regression; save a baseline on this machine, or pass "
            "--allow-different-hardware"
        )
    outcomes = [gate.evaluate(pair) for pair in comparison.pairs for gate in gates]
    return CheckReport(comparison=comparison, gates=gates, outcomes=outcomes)
