"""`recbench compare`: one rich table per matched pair, then unmatched points and the geometric mean.
Formatting only: every figure comes from bench.compare.compare_results."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.compare.comparison import Comparison, MetricComparison, Pair
from bench.compare.stats import MIN_SAMPLES, NO_TEST, NOISY_CV, TEST_NAME
from bench.console.terminal import console_for_stdout
from bench.core.formatting import format_percent
from bench.core.stats import MIN_SAMPLES_FOR_P99

_STYLE = {"worse": "red", "better": "green", "same": "dim"}


def render_comparison(comparison: Comparison, console: Console | None = None) -> None:
    console = console or console_for_stdout()
    for pair in comparison.pairs:
        console.print(pair_table(pair))
        for warning in pair.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning)}")
        for note in pair.notes:
            console.print(f"[dim]note:[/] {escape(note)}")
    for side, used, older in comparison.superseded:
        console.print(
            f"[dim]note:[/] {side}: {len(older) + 1} results for {escape(used.label)}; using the newest "
            f"({escape(str(used.path))}), not {', '.join(escape(str(r.path)) for r in older)}"
        )
    if comparison.unmatched_baseline or comparison.unmatched_current:
        console.print(unmatched_table(comparison))
    else:
        console.print("unmatched points: none")
    console.print(summary_line(comparison))
    console.print(
        f"[dim]significance: {TEST_NAME} ({1 - comparison.alpha:.0%}, on raw per-batch samples; throughput on "
        f"the end_to_end p50); memory, FLOPs, energy, cost: {NO_TEST}. Verdict 'same' unless the change is >= "
        f"{format_percent(comparison.min_effect)} and its interval excludes 0. Weak: < {MIN_SAMPLES} samples, cv > "
        f"{NOISY_CV:.0%}, or a p99 from < {MIN_SAMPLES_FOR_P99} samples (near the maximum).[/]"
    )


def pair_table(pair: Pair) -> Table:
    caption = escape(f"baseline {pair.baseline.path}\ncurrent  {pair.current.path}")
    table = Table(title=escape(pair.label), caption=caption, caption_justify="left")
    columns = ("metric", "baseline", "current", "ratio", "change", "change interval (n)", "verdict", "better")
    for column in columns:
        table.add_column(column, justify="right" if column in ("baseline", "current", "ratio", "change") else "left")
    for m in pair.metrics:
        table.add_row(
            m.name + (f" ({escape(m.detail)})" if m.detail else ""),
            m.spec.format(m.baseline),
            m.spec.format(m.current),
            f"{m.ratio:.3f}",
            format_percent(m.change, signed=True),
            _test_cell(m),
            _verdict_cell(m),
            "lower" if m.spec.higher_is_worse else "higher",
        )
    return table


def _test_cell(m: MetricComparison) -> str:
    if m.test is None or m.interval is None:
        return "single value"
    low, high = m.interval
    text = (
        f"[{format_percent(low, signed=True)}, {format_percent(high, signed=True)}] "
        f"({m.test.n_baseline}/{m.test.n_current})"
    )
    return f"[bold]{text}[/]" if m.significant else text


def _verdict_cell(m: MetricComparison) -> str:
    text = m.verdict if m.assessment == "same" else f"{m.verdict} ({m.assessment})"
    if m.weak:
        text += ", weak"
    return f"[{_STYLE[m.assessment]}]{text}[/]"


def unmatched_table(comparison: Comparison) -> Table:
    table = Table(title="unmatched points (not compared)")
    for column in ("only in", "scenario", "point", "file"):
        table.add_column(column)
    for side, results in (("baseline", comparison.unmatched_baseline), ("current", comparison.unmatched_current)):
        for r in results:
            table.add_row(side, escape(r.key[0]), escape(r.key[1]), escape(str(r.path)))
    return table


def summary_line(comparison: Comparison) -> str:
    geomean = comparison.end_to_end_p50_geomean
    n = comparison.geomean_pairs
    if geomean is None:
        return "geometric mean of end_to_end p50 ratio: n/a (no matched pair)"
    worse = sum(1 for p in comparison.pairs for m in p.metrics if m.assessment == "worse")
    better = sum(1 for p in comparison.pairs for m in p.metrics if m.assessment == "better")
    return (
        f"geometric mean of end_to_end p50 ratio (current/baseline) over {n} pair{'s' if n != 1 else ''}: "
        f"[bold]{geomean:.3f}[/] ({format_percent(geomean - 1, signed=True)}); {worse} metric(s) worse, {better} better"
    )
