"""Compare results against a baseline, gate regressions in CI, and keep named baselines per machine.

Public API:
- compare_results(baseline, current, *, min_effect=0.05, alpha=0.05) -> Comparison
- check_results(baseline, current, *, fail_on, min_effect=0.05, alpha=0.05) -> CheckReport
- parse_gates(text) -> list[Gate]; Gate(metric, threshold).evaluate(pair) -> GateOutcome
- save_baseline(results, *, name, results_dir="results", force=False) -> Path; resolve_baseline, list_baselines
"""

from bench.compare.baseline import list_baselines, resolve_baseline, save_baseline
from bench.compare.comparison import Comparison, MetricComparison, Pair, compare_results
from bench.compare.gates import CheckReport, Gate, GateOutcome, check_results, parse_gates
from bench.compare.metrics import MetricSpec, resolve_metric

__all__ = [
    "CheckReport",
    "Comparison",
    "Gate",
    "GateOutcome",
    "MetricComparison",
    "MetricSpec",
    "Pair",
    "check_results",
    "compare_results",
    "list_baselines",
    "parse_gates",
    "resolve_baseline",
    "resolve_metric",
    "save_baseline",
]
