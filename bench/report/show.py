"""`recbench show`: readable tables of results (rich). Formatting only: every figure is read from the
result file, where it was computed from raw samples."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.errors import InputError
from bench.results.store import iter_result_paths, load_result


def show_results(paths: list[Path], *, console: Console | None = None) -> int:
    """Print one block per result; returns how many were shown."""
    # Off a terminal (CI logs, pipes) rich assumes 80 columns and truncates the tables.
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    count = 0
    for path in iter_result_paths(paths):
        try:
            render_result(load_result(path), path, console)
        except (KeyError, TypeError) as exc:
            raise InputError(f"{path}: incomplete recbench result (missing {exc})") from None
        count += 1
    return count


def render_result(result: dict[str, Any], path: Path, console: Console) -> None:
    scenario, model = result["scenario"], result["model"]
    summary = result["summary"]
    console.rule(f"{scenario['name']} [{result['point']['key']}]")
    console.print(
        f"{path}\nmodel {model['label']} ({model['params_total'] / 1e6:.1f}M params, {model['dtype']}, "
        f"{model['weights']} weights) on {scenario['device']} | machine {result['machine']} | "
        f"batch {scenario['batch_size']} | max prompt {scenario['max_prompt_tokens']} tokens | "
        f"scoring {scenario['scoring']['mode']} | {result['latency']['iterations']} iterations after "
        f"{result['latency']['warmup_iterations']} warm-up | commit {result['environment'].get('git_commit')}"
    )
    console.print(_latency_table(summary))
    console.print(_throughput_table(summary["throughput"]))
    console.print(_memory_line(result))
    if result.get("energy"):
        console.print(_energy_line(result["energy"]))
    for warning in result.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")
    quality = result["quality"]
    if quality.get("chance_level"):
        console.print(f"[dim]quality: {quality['note']}[/]")


def _latency_table(summary: dict[str, Any]) -> Table:
    table = Table(title="latency per batch (ms) and FLOPs per batch")
    for column in (
        "stage",
        "p50",
        "p90",
        "p99",
        "mean",
        "stdev",
        "n",
        "GFLOP counted (calib.)",
        "GFLOP analytic* (calib.)",
        "GFLOP/batch* (timed)",
        "GFLOP/s*",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    flops = summary["flops"]["stages"]
    for stage, stats in summary["latency"]["stages"].items():
        f = flops.get(stage, {})
        table.add_row(
            stage,
            *(f"{stats[k] * 1e3:.2f}" for k in ("p50", "p90", "p99", "mean", "stdev")),
            str(stats["n"]),
            _giga(f.get("counted_flops")),
            _giga(f.get("analytic_flops_estimate")),
            _giga(f.get("timed_batches_flops_mean")),
            _giga(f.get("achieved_flops_per_s")),
        )
    llm = summary["flops"]["llm"]
    mfu = llm.get("mfu")
    table.caption = (
        f"* analytic = estimate from the architecture. LLM: {_giga(llm['achieved_flops_per_s'])} GFLOP/s achieved, "
        f"MFU {mfu * 100:.1f}% "
        if mfu is not None
        else "* analytic = estimate from the architecture."
    )
    if mfu is not None:
        table.caption += f"({llm.get('mfu_basis') or 'datasheet peak'})"
    return table


def _throughput_table(throughput: dict[str, Any]) -> Table:
    table = Table(title=f"throughput ({throughput['basis']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, figure in throughput.items():
        if isinstance(figure, dict):
            table.add_row(name, f"{figure['value']:.4g}", figure["unit"])
    return table


def _memory_line(result: dict[str, Any]) -> str:
    measured, estimate = result["memory"]["measured"], result["memory"]["analytic_estimate"]
    text = (
        f"memory: peak RSS {measured['rss_peak'] / 2**20:.0f} MiB (baseline {measured['rss_baseline'] / 2**20:.0f} "
        f"MiB); estimate: weights {estimate['weights_bytes'] / 2**20:.0f} MiB + KV cache "
        f"{estimate['kv_cache_bytes'] / 2**20:.1f} MiB + activations {estimate['activations_bytes'] / 2**20:.1f} MiB"
    )
    if measured.get("cuda_peak_allocated") is not None:
        text += f"; CUDA peak allocated {measured['cuda_peak_allocated'] / 2**20:.0f} MiB"
    return text


def _energy_line(energy: dict[str, Any]) -> str:
    if energy.get("joules") is None:
        return f"energy: not available ({'; '.join(energy.get('notes', []))})"
    label = "estimate, " if energy["estimated"] else ""
    return (
        f"energy ({label}{energy['method']}): {energy['joules_per_request']:.3g} J/request, "
        f"{energy['joules_per_recommendation']:.3g} J/recommendation, {energy['average_watts']:.3g} W average"
    )


def _giga(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e9:.3g}"
