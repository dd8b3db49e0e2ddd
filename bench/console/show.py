"""`recbench show`: readable tables of results (rich). Formatting only: every figure is read from the result,
where it was computed from raw samples."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.console.terminal import console_for_stdout
from bench.core.formatting import format_bytes, format_count, format_ms, format_number, format_percent, format_si
from bench.core.stages import display_order
from bench.results.model import Energy, Result, Summary, Throughput
from bench.results.reader import StoredResult, read_results


def show_results(paths: list[Path], *, console: Console | None = None) -> int:
    """Print one block per result; returns how many were shown."""
    console = console or console_for_stdout()
    stored = read_results(paths)
    for item in stored:
        render_result(item, console)
    return len(stored)


def render_result(stored: StoredResult, console: Console) -> None:
    result = stored.result
    scenario, model = result.scenario, result.model
    console.rule(escape(result.label))
    console.print(
        escape(
            f"{stored.path}\nmodel {model.label} ({format_count(model.params_total)} params, {model.dtype}, "
            f"{model.weights} weights) on {scenario.device} | machine {result.machine} | "
            f"batch {scenario.batch_size} | max prompt {scenario.max_prompt_tokens} tokens | "
            f"scoring {scenario.scoring.mode} | {result.latency.iterations} iterations after "
            f"{result.latency.warmup_iterations} warm-up | commit {result.environment.git_commit}"
        )
    )
    console.print(_latency_table(result.summary))
    console.print(_throughput_table(result.summary.throughput))
    console.print(_memory_line(result))
    console.print(_energy_line(result.energy))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning.message)}")
    if result.quality.chance_level and result.quality.note:
        console.print(f"[dim]quality: {escape(result.quality.note)}[/]")


def _latency_table(summary: Summary) -> Table:
    table = Table(title="latency per batch (ms) and FLOPs per batch")
    for column in (
        "stage",
        "p50",
        "p90",
        "p99",
        "mean",
        "stdev",
        "n",
        "FLOP counted (calib.)",
        "FLOP analytic* (calib.)",
        "FLOP/batch* (timed)",
        "FLOP/s*",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    flops = summary.flops.stages
    for stage in display_order(list(summary.latency.stages)):
        stats = summary.latency.stages[stage]
        f = flops.get(stage)
        table.add_row(
            str(stage),
            *(format_ms(getattr(stats, k)) for k in ("p50", "p90", "p99", "mean", "stdev")),
            str(stats.n),
            _flop(f.counted_flops if f else None),
            _flop(f.analytic_flops_estimate if f else None),
            _flop(f.timed_batches_flops_mean if f else None),
            _flop(f.achieved_flops_per_s if f else None, "FLOP/s"),
        )
    llm = summary.flops.llm
    table.caption = "* analytic = estimate from the architecture."
    if llm.mfu is not None:
        table.caption = (
            f"* analytic = estimate from the architecture. LLM: {format_si(llm.achieved_flops_per_s, 'FLOP/s')} "
            f"achieved, MFU {format_percent(llm.mfu)} ({llm.mfu_basis or 'datasheet peak'})"
        )
    return table


def _throughput_table(throughput: Throughput) -> Table:
    table = Table(title=f"throughput ({throughput.basis})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, field in Throughput.model_fields.items():
        value = getattr(throughput, name)
        if name != "basis" and value is not None:
            table.add_row(name, format_number(value), field.description or "")
    return table


def _memory_line(result: Result) -> str:
    measured, estimate = result.memory.measured, result.memory.analytic_estimate
    text = (
        f"memory: peak RSS {format_bytes(measured.rss_peak, binary=True)} (baseline "
        f"{format_bytes(measured.rss_baseline, binary=True)}); estimate: weights "
        f"{format_bytes(estimate.weights_bytes, binary=True)} + KV cache "
        f"{format_bytes(estimate.kv_cache_bytes, binary=True)} + activations "
        f"{format_bytes(estimate.activations_bytes, binary=True)}"
    )
    if measured.cuda_peak_allocated is not None:
        text += f"; CUDA peak allocated {format_bytes(measured.cuda_peak_allocated, binary=True)}"
    return text


def _energy_line(energy: Energy) -> str:
    if energy.joules is None:
        return f"energy: not available ({'; '.join(energy.notes)})"
    label = "estimate, " if energy.estimated else ""
    return (
        f"energy ({label}{energy.method}): {format_number(energy.joules_per_request)} J/request, "
        f"{format_number(energy.joules_per_recommendation)} J/recommendation, "
        f"{format_number(energy.average_watts)} W average"
    )


def _flop(value: float | None, unit: str = "FLOP") -> str:
    return format_si(value, unit) if value else format_number(value)
