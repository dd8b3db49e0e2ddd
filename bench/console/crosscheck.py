"""`recbench projection-check`: GPU measurements beside their projections, one table per check (formatting
only; the figures come from bench.cost.crosscheck)."""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table

from bench.core.formatting import MISSING, format_ms, format_percent
from bench.cost.crosscheck import ProjectionCheck


def check_table(check: ProjectionCheck) -> Table:
    gpu, source = check.measured, check.source
    title = (
        f"{escape(gpu.scenario)} [{escape(gpu.point)}] on {check.tier}: projected {check.kind}"
        f" ({escape(source.device_name)}, {source.dtype} -> {gpu.dtype})"
    )
    table = Table(
        title=title,
        caption=f"medians per batch; projection uncalibrated (catalogue efficiencies); LLM bound: "
        f"{check.llm_bound or MISSING}; error = projected / measured on the GPU - 1",
        box=box.SIMPLE_HEAD,
    )
    source_label = "measured (CPU)" if check.source is not check.measured else "measured (GPU)"
    for column in ("stage", source_label, "measured on GPU", "projected", "error"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in check.stages:
        table.add_row(
            stage.stage,
            format_ms(stage.source_s),
            format_ms(stage.measured_s),
            format_ms(stage.projected_s),
            format_percent(stage.error, signed=True) if stage.error is not None else MISSING,
        )
    return table
