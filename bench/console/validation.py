"""`recbench validate-projections`: the per-row table and the summary, as a rich table or Markdown (for the
README). Formatting only: the figures come from bench.cost.validation."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bench.core.formatting import format_number, format_percent
from bench.cost.validation import (
    EXPLAIN_BEYOND,
    TARGET_MEDIAN_ABS_ERROR,
    RowProjection,
    ValidationSummary,
    median_abs_error_by_metric,
)

COLUMNS = ("tier", "engine", "model", "dtype", "batch", "in/out", "metric", "published", "projected", "error", "bound")
UNITS = {"output_tokens_per_s": "out tok/s", "ttft_ms": "TTFT ms", "tpot_ms": "TPOT ms"}


def _cells(r: RowProjection) -> list[str]:
    row = r.row
    batch = str(r.batch) if r.batch is not None else str(row.batch)
    if row.batch == "max" and r.batch is not None:
        batch = f"max ({r.batch})"
    return [
        row.tier,
        row.engine.split(" (")[0].split()[0],
        row.preset,
        row.dtype,
        batch,
        f"{row.input_tokens}/{row.output_tokens}" if not row.skip else "varies",
        UNITS[row.metric],
        format_number(row.value),
        format_number(r.projected) if r.projected is not None else "skipped",
        format_percent(r.error, signed=True) if r.error is not None else "",
        r.bound,
    ]


def summary_lines(summary: ValidationSummary) -> list[str]:
    projected = summary.projected
    by_metric = ", ".join(f"{UNITS[m]} {format_percent(e)}" for m, e in median_abs_error_by_metric(summary).items())
    verdict = "meets" if summary.median_abs_error <= TARGET_MEDIAN_ABS_ERROR else "misses"
    lines = [
        f"median absolute error {format_percent(summary.median_abs_error)} over {len(projected)} rows on "
        f"{len(summary.gpu_types)} GPU types ({verdict} the {format_percent(TARGET_MEDIAN_ABS_ERROR)} goal); "
        f"by metric: {by_metric}",
        f"within 30%: {sum(abs(r.error or 0) <= 0.3 for r in projected)} of {len(projected)}; "
        f"beyond {EXPLAIN_BEYOND:g}x: {sum(r.beyond for r in summary.rows)} "
        f"({len(summary.unexplained)} without an explanation)",
        "physics: every projected batch-1 decode step takes at least the weights' read time at peak bandwidth"
        if not summary.physics_violations
        else f"physics VIOLATED by: {', '.join(r.row.id for r in summary.physics_violations)}",
    ]
    faster = [r.row.id for r in summary.rows if not r.published_physics_ok]
    if faster:
        lines.append(f"published figures faster than the weights' read time (mislabelled?): {', '.join(faster)}")
    for r in summary.rows:
        if r.row.skip:
            lines.append(f"skipped {r.row.id}: {r.row.skip}")
        if r.beyond and r.row.explanation:
            lines.append(f"{r.row.id} is {format_percent(r.error, signed=True)}: {r.row.explanation}")
    return lines


def validation_table(summary: ValidationSummary) -> Group:
    table = Table(
        title="Projections vs published GPU measurements (catalogue efficiencies, no GPU calibration)",
        caption="error = projected / published - 1; bound: what limits the projected forward; sources: "
        "bench/hardware/published_gpu_measurements.yaml",
        box=box.SIMPLE_HEAD,
    )
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("batch", "published", "projected", "error") else "left")
    for r in summary.rows:
        table.add_row(*_cells(r))
    return Group(table, *(Text(line) for line in summary_lines(summary)))


def validation_markdown(summary: ValidationSummary) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " | source |", "|" + "---|" * (len(COLUMNS) + 1)]
    for r in summary.rows:
        lines.append("| " + " | ".join(_cells(r)) + f" | [{r.row.date}]({r.row.source}) |")
    return "\n".join(lines + [""] + [f"- {line}" for line in summary_lines(summary)]) + "\n"
