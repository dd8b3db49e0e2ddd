"""`recbench show`: results in the terminal (rich). One summary line per result for a folder, the detailed tables
for one result (or with --detail). Formatting only: every figure is read from the result, where it was computed
from raw samples."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.console.terminal import console_for_stdout
from bench.core.formatting import (
    MISSING,
    format_bytes,
    format_count,
    format_ms,
    format_number,
    format_percent,
    format_si,
)
from bench.core.kinds import BUCKETED_THROUGHPUT_BASIS, EnergyMethod, WarningKind
from bench.core.stages import Stage, display_order
from bench.results.model import Energy, GemmPeakInfo, LoadSection, Quality, Result, Summary, Throughput
from bench.results.reader import StoredResult, read_results


def show_results(
    paths: list[Path], *, detail: bool = False, strict: bool = False, console: Console | None = None
) -> int:
    """A summary line per result (the detailed tables for a single result, or with `detail`); returns how many
    results were shown."""
    console = console or console_for_stdout()
    stored = sorted(read_results(paths, strict=strict), key=lambda s: (*s.key, s.created_at))
    if len(stored) == 1 or detail:
        for item in stored:
            render_result(item, console)
    elif stored:
        console.print(summary_table(stored))
        console.print("[dim]one result, or --detail, shows the tables per stage[/]")
    return len(stored)


def summary_table(stored: list[StoredResult]) -> Table:
    # Five columns, no vertical rules, long text folded rather than cut: the table reads at 80 columns.
    caption = "p99 over n batches; with n < 100 it is near the maximum"
    if any(item.result.summary.throughput.basis == BUCKETED_THROUGHPUT_BASIS for item in stored):
        # bucketed batches alternate short and long by design, so req/s is not batch / p50 (measurement.derive)
        caption += "; req/s of bucketed batches: batch size / the median of each bucketing window's mean batch"
    table = Table(
        title=f"{len(stored)} results",
        caption=caption,
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        show_edge=False,
    )
    for column in ("result (file)", "p50 / p99 ms (n)", "req/s", "peak RSS", "load test, quality, warnings"):
        numeric = column in ("p50 / p99 ms (n)", "req/s", "peak RSS")
        table.add_column(column, justify="right" if numeric else "left", overflow="fold", no_wrap=numeric)
    for item in stored:
        result = item.result
        e2e = result.end_to_end
        notes = [_load_cell(result.load), _quality_cell(result.quality)]
        kinds = sorted({str(w.kind) for w in result.warnings if w.kind != WarningKind.CHANCE_LEVEL})  # said above
        notes += [f"[yellow]{escape(kind)}[/]" for kind in kinds]
        table.add_row(
            f"{escape(result.label)}\n[dim]{escape(item.path.name)} ({result.scenario.engine})[/]",
            f"{format_ms(e2e.p50)} / {format_ms(e2e.p99)} ({e2e.n})",
            format_number(result.summary.throughput.requests_per_s),
            format_bytes(result.memory.measured.rss_peak, binary=True),
            "; ".join(note for note in notes if note),
        )
    return table


def _load_cell(load: LoadSection | None) -> str:
    if load is None:
        return ""
    qps = load.peak_qps if load.peak_qps is not None else load.target_qps
    target = f" at {format_number(qps)} QPS" if qps is not None else ""
    p99 = load.latency_s.get("p99")
    return f"{load.mode} {load.verdict}{target}, p99 {format_ms(p99)} ms, {load.dropped} dropped"


def _quality_cell(quality: Quality) -> str:
    if quality.chance_level:
        return "chance level [dim](random weights)[/]"
    text = f"HR@{quality.top_n} {format_number(quality.hit_rate)} (chance {format_number(quality.chance_hit_rate)})"
    return escape(text)


def render_result(stored: StoredResult, console: Console) -> None:
    result = stored.result
    scenario, model = result.scenario, result.model
    load = result.load
    batch = (
        f"batch {load.batch_size_mean:.3g} mean, up to {scenario.batch_size} (LoadGen {load.mode})"
        if load is not None and load.batch_size_mean
        else f"batch {scenario.batch_size}"
    )
    console.rule(escape(result.label))
    console.print(
        escape(
            f"{stored.path}\nmodel {model.label} ({format_count(model.params_total)} params, {model.dtype}, "
            f"{model.weights} weights, {scenario.engine} engine) on {scenario.device} | machine {result.machine} | "
            f"{batch} | max prompt {scenario.max_prompt_tokens} tokens | "
            f"scoring {scenario.scoring.mode} | {result.latency.iterations} timed batches after "
            f"{result.latency.warmup_iterations} warm-up | "
            f"commit {result.environment.git_commit}"
        )
    )
    console.print(_latency_table(result.summary, result.peak.gemm, padding=_padding_note(result)))
    console.print(_throughput_table(result.summary.throughput))
    if result.load is not None:
        for line in _load_lines(result.load):
            console.print(escape(line))
    console.print(_memory_line(result))
    console.print(_energy_line(result.energy))
    for warning in result.warnings:
        console.print(f"[yellow]warning ({warning.kind}):[/] {escape(warning.message)}")
    console.print(f"quality: {_quality_cell(result.quality)}")
    if result.quality.chance_level and result.quality.note:
        console.print(f"[dim]{escape(result.quality.note)}[/]")


def _latency_table(summary: Summary, peak: GemmPeakInfo, *, padding: str = "") -> Table:
    table = Table(
        title="latency per batch (ms) and FLOPs per batch",
        caption="the loop's stages add up to end_to_end; the LLM's own stages (↳) are inside scoring",
    )
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
            f"  ↳ {stage}" if stage.parent is Stage.SCORING else str(stage),
            *(format_ms(getattr(stats, k)) for k in ("p50", "p90", "p99", "mean", "stdev")),
            str(stats.n),
            _flop(f.counted_flops if f else None),
            _flop(f.analytic_flops_estimate if f else None),
            _flop(f.timed_batches_flops_mean if f else None),
            _flop(f.achieved_flops_per_s if f else None, "FLOP/s"),
        )
    llm = summary.flops.llm
    table.caption += "\n* analytic = estimate from the architecture."
    if llm.mfu is not None:
        table.caption += (
            f" LLM: {format_si(llm.achieved_flops_per_s, 'FLOP/s')} achieved, MFU {format_percent(llm.mfu)} "
            f"({llm.mfu_basis or 'datasheet peak'}"
            + (f": {format_si(llm.datasheet_peak_flops_per_s, 'FLOP/s')}" if not llm.mfu_basis else "")
            + ")"
        )
    table.caption += (
        f"\nmeasured GEMM peak of this machine: {format_si(llm.measured_gemm_peak_flops_per_s, 'FLOP/s')}"
        + _peak_provenance(peak)
    )
    if llm.note:  # e.g. why achieved exceeds the peak
        table.caption += f" ({llm.note})"
    if llm.padding_waste is not None:
        table.caption += (
            f"\nPadding: {format_percent(llm.padding_waste)} of the LLM's FLOPs{padding}; on useful FLOPs "
            f"{format_si(llm.useful_achieved_flops_per_s, 'FLOP/s')}"
            + (
                f", {format_percent(llm.useful_fraction_of_measured_gemm_peak)} of the measured GEMM peak"
                if llm.useful_fraction_of_measured_gemm_peak is not None
                else ""
            )
        )
    return table


# Where a scoring mode's LLM work goes besides the prompt, and so the padding the prompt's share does not cover.
WORK_AFTER_THE_PROMPT = {"likelihood": "the candidate titles", "generate": "the decode steps"}


def _padding_note(result: Result) -> str:
    """The prompts' own share of padding, and for scoring modes with work after the prompt, where the rest is:
    packed prompts have none, yet the titles or decoded tokens after them still run as a padded batch."""
    share = result.work.prompt_padding_fraction
    if share is None:
        return ""
    after = WORK_AFTER_THE_PROMPT.get(result.scenario.scoring.mode)
    rest = f"; {after} still run as a padded batch" if after else ""
    return f" (prompts: {format_percent(share)} of their positions{rest})"


def _peak_provenance(peak: GemmPeakInfo) -> str:
    """Whether this run measured the peak or took the best cached without measuring, and when it was last checked
    (older results recorded neither)."""
    if peak.measured_now is None:
        return ""
    when = f" {peak.checked_at:%Y-%m-%d %H:%M} UTC" if peak.checked_at else ""
    if peak.measured_now:
        return f" (the best seen on this machine, checked by this run's measurement{when})"
    return f" (the best seen on this machine, last checked{when}; not measured in this run)"


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


def _load_lines(load: LoadSection) -> list[str]:
    latency = load.latency_s
    lines = [
        f"load test ({load.mode}): {load.verdict} (LoadGen: {load.loadgen_validity}"
        + (f", {load.invalid_reason}" if load.invalid_reason else "")
        + f"); {load.served} of {load.queries} queries served, {load.dropped} dropped; completed "
        f"{format_number(load.completed_samples_per_s)} QPS"
        + (f" at a target of {format_number(load.target_qps)}" if load.target_qps is not None else ""),
        f"  served queries' latency (ms): p50 {format_ms(latency.get('p50'))}, p90 {format_ms(latency.get('p90'))}, "
        f"p99 {format_ms(latency.get('p99'))}, max {format_ms(latency.get('max'))}",
    ]
    if load.timed_out:
        lines.append("  ended by the wall-time bound (load.max_wall_s) before LoadGen finished: raise it, or lower "
                     "min_duration_s or min_query_count")  # fmt: skip
    if load.probes:
        probes = ", ".join(f"{format_number(p.qps)} {p.verdict}" for p in load.probes)
        lines.append(f"  peak search: {probes} -> peak {format_number(load.peak_qps)} QPS")
    return lines


def _memory_line(result: Result) -> str:
    measured, estimate = result.memory.measured, result.memory.analytic_estimate
    text = (
        f"memory: peak RSS {format_bytes(measured.rss_peak, binary=True)} (baseline "
        f"{format_bytes(measured.rss_baseline, binary=True)}"
        + (
            f"; anonymous {format_bytes(measured.anon_peak, binary=True)}: without file-backed pages, so without "
            "libraries or memory-mapped weights"
            if measured.anon_peak is not None
            else ""
        )
        + f"); estimate: weights "
        f"{format_bytes(estimate.weights_bytes, binary=True)} + KV cache "
        f"{format_bytes(estimate.kv_cache_bytes, binary=True)} + activations "
        f"{format_bytes(estimate.activations_bytes, binary=True)}"
    )
    if measured.cuda_peak_allocated is not None:
        text += f"; CUDA peak allocated {format_bytes(measured.cuda_peak_allocated, binary=True)}"
    return text


def _energy_line(energy: Energy) -> str:
    if energy.joules is None:
        return f"energy: not available ({'; '.join(energy.notes) or MISSING})"
    label = "estimate, " if energy.estimated else ""
    text = (
        f"energy ({label}{energy.method}): {format_number(energy.joules_per_request)} J/request, "
        f"{format_number(energy.joules_per_recommendation)} J/recommendation, "
        f"{format_number(energy.average_watts)} W average"
    )
    model = energy.readings[0] if energy.method == EnergyMethod.MODELLED and energy.readings else {}
    if "utilisation" in model and "idle_fraction" in model:
        text += (
            f" = TDP x ({model['idle_fraction']:.0%} idle + the rest x CPU utilisation {model['utilisation']:.0%}); "
            "report and plan price energy at full TDP x the median batch time on every tier (one basis for all "
            "tiers): above this figure where utilisation is below 100%, below it where slow batches lift the mean "
            "batch time (which this figure covers) above the median"
        )
    return text


def _flop(value: float | None, unit: str = "FLOP") -> str:
    return format_si(value, unit) if value else format_number(value)
