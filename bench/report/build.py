"""`recbench report`: results in, one folder out: report.html (self-contained, opens offline), report.md (the
same content, linking the PNGs), the figures as PNG files and the tables as CSV.

Every figure in the report is computed by the cost layer (bench.cost) or read from the result files; this
module only gathers, tabulates and saves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import __version__
from bench.core.errors import InputError
from bench.core.formatting import format_ms, format_number, to_ms
from bench.core.io import atomic_write_json
from bench.core.stages import LOOP_STAGES, Stage
from bench.cost.capacity import CapacityPlan, PlanSettings, plan_capacity
from bench.cost.levers import LEVER_COLUMNS, compare_levers, lever_dicts
from bench.cost.model import TierCost, calibration_dict, check_measured_on, cost_table, row_dict
from bench.cost.projection import OperatingPoint, operating_point
from bench.cost.quality import QUALITY_COLUMNS, quality_costs, quality_dict
from bench.report.figures import LatencyBar, plan_figures
from bench.report.render import (
    FigureFile,
    LoadTestInfo,
    ReportContent,
    ResultInfo,
    compose,
    render_html,
    render_markdown,
)
from bench.results.model import Result
from bench.results.reader import StoredResult, read_newest, scenario_edit

if TYPE_CHECKING:
    from bench.hardware.tiers import Tier

LATENCY_COLUMNS = ["result", "scenario", "point", "machine", "stage", "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms"]
MEMORY_COLUMNS = [
    "result",
    "scenario",
    "point",
    "model",
    "dtype",
    "batch_size",
    "max_prompt_tokens",
    "weights_bytes",
    "kv_cache_bytes",
    "activations_bytes",
    "estimate_total_bytes",
    "rss_baseline_bytes",
    "rss_peak_bytes",
    "rss_increase_bytes",
    "cuda_peak_allocated_bytes",
    "cuda_peak_reserved_bytes",
]
ENERGY_COLUMNS = [
    "result",
    "scenario",
    "point",
    "tier",
    "basis",
    "energy_j_per_recommendation",
    "energy_j_per_request",
    "energy_kind",
    "energy_basis",
]
WORK_COLUMNS = [
    "result",
    "scenario",
    "point",
    "batching",
    "prompt_padding_fraction",
    "llm_flops_per_batch_executed",
    "llm_flops_per_batch_useful",
    "padding_waste",
    "achieved_flops_per_s_executed",
    "achieved_flops_per_s_useful",
    "useful_fraction_of_measured_gemm_peak",
    "measured_gemm_peak_flops_per_s",
    "gemm_peak_method",
    "note",
]
PLAN_COLUMNS = [
    "scenario",
    "qps",
    "slo_p99_ms",
    "hours_per_day",
    "headroom",
    "tier",
    "fits",
    "meets_slo",
    "cheapest",
    "chosen_point",
    "chosen_batch_size",
    "chosen_basis",
    "chosen_batch_p99_ms",
    "requests_per_s_per_machine",
    "machines",
    "rented_monthly_usd",
    "rented_cost_per_1m_recommendations_usd",
    "owned_monthly_usd",
    "owned_cost_per_1m_recommendations_usd",
    "include_owned",
    "min_ndcg",
    "chosen_lever",
    "chosen_ndcg_mean",
    "chosen_ndcg_ci_low",
    "chosen_ndcg_ci_high",
    "reason",
    "slo_basis",
    "latency_basis",
]


def write_report(
    result_paths: Sequence[Path],
    output_dir: Path,
    *,
    tiers: Mapping[str, Tier],
    measured_on: str | None = None,
    price_per_hour: float | None = None,
    plan: PlanSettings | None = None,
    strict: bool = False,
    figures: bool = True,
) -> list[Path]:
    """Write the report for `result_paths` (files, or folders searched recursively) into `output_dir`;
    returns the paths written: report.html, report.md, the CSV tables, the PNG figures.

    `measured_on` names the catalogue tier the results were measured on (default: matched from the results'
    fingerprints); `price_per_hour` prices a machine the catalogue does not know; `plan` adds a capacity plan;
    `strict` makes a damaged result file an error instead of a warning; `figures=False` skips drawing the PNGs
    (the tables and text are the same).
    """
    from bench.report.plots import DPI, draw, tier_colors

    tiers = dict(tiers)
    if not tiers:
        raise InputError("no hardware tiers to cost the results on")
    check_measured_on(measured_on, tiers)
    loaded, superseded = read_newest([Path(p) for p in result_paths], strict=strict)

    points = {id(stored): operating_point(stored) for stored in loaded}
    loaded.sort(key=lambda stored: _order(points[id(stored)]))
    ordered_points = [points[id(stored)] for stored in loaded]
    table = cost_table(ordered_points, tiers, measured_on=measured_on, price_per_hour=price_per_hour)
    rows = table.rows
    plans = plan_capacity(rows, plan) if plan is not None else []
    quality = quality_costs(rows)
    levers = compare_levers(rows)

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"--output: {output_dir} is a file, not a folder: name a folder for the report")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output: {output_dir}: cannot create the report folder ({exc.strerror})") from None
    written: list[Path] = []

    tables = [
        ("costs.csv", None, [row_dict(r) for r in rows]),
        ("latency.csv", LATENCY_COLUMNS, [row for stored in loaded for row in _latency_rows(stored)]),
        ("memory.csv", MEMORY_COLUMNS, [_memory_row(stored) for stored in loaded]),
        ("energy.csv", ENERGY_COLUMNS, [_energy_row(r) for r in rows]),
        ("calibration.csv", None, [calibration_dict(c) for c in table.calibrations]),
        ("work.csv", WORK_COLUMNS, [_work_row(stored) for stored in loaded]),
        ("quality.csv", QUALITY_COLUMNS, [quality_dict(q) for q in quality.items]),
        ("levers.csv", LEVER_COLUMNS, [row for c in levers for row in lever_dicts(c)]),
    ]
    if plan is not None:
        tables.append(("plan.csv", PLAN_COLUMNS, [row for p in plans for row in _plan_rows(p)]))
    for name, columns, table_rows in tables:
        written.append(_write_csv(output_dir / name, columns, table_rows))

    single_scenario = len({p.scenario for p in ordered_points}) == 1
    bars = [
        _latency_bar(stored.result, point, single_scenario)
        for stored, point in zip(loaded, ordered_points, strict=True)
    ]
    _dedupe_labels(bars, [stored.result.created_at.isoformat() for stored in loaded])
    measured_memory = {str(s.path): m for s in loaded if (m := _measured_memory(s.result)) is not None}
    colors = tier_colors({name: tier.kind for name, tier in table.tiers.items()})
    drawn = []
    figure_plans = (
        plan_figures(
            rows,
            list(table.tiers),
            bars,
            measured_memory=measured_memory,
            min_ndcg=plan.min_ndcg if plan is not None else None,
        )
        if figures
        else []
    )
    for figure_plan in figure_plans:
        figure = draw(figure_plan, colors)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
        png = buffer.getvalue()
        figure.clear()  # no pyplot: dropping the Figure frees it; clearing frees the artists now
        filename = f"{figure_plan.name}.png"
        (output_dir / filename).write_bytes(png)
        written.append(output_dir / filename)
        drawn.append(FigureFile(figure_plan.name, figure_plan.title, filename, png, figure_plan.caption))

    content = ReportContent(
        results=[_result_info(stored, point) for stored, point in zip(loaded, ordered_points, strict=True)],
        rows=rows,
        calibrations=table.calibrations,
        launch_overhead_us=table.launch_overhead_us,
        gpu_tiers=frozenset(name for name, tier in table.tiers.items() if tier.kind == "gpu"),
        plans=plans,
        quality=quality,
        levers=levers,
        figures=drawn,
        figures_skipped=not figures,
        tables=[name for name, _, _ in tables],
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        generator_version=__version__,
        measured_on=measured_on,
        load_tests=[_load_test_info(s) for s in loaded if s.result.load is not None],
        work=[_work_row(s) for s in loaded],
        warnings=[(s.label, str(w.kind), w.message) for s in loaded for w in s.result.warnings],
        superseded=[(s.label, str(used.path), _older_run(s, used)) for s, used in superseded],
    )
    document = compose(content)
    html_path, md_path = output_dir / "report.html", output_dir / "report.md"
    html_path.write_text(render_html(document), encoding="utf-8")
    md_path.write_text(render_markdown(document), encoding="utf-8")
    written = [html_path, md_path, *written]
    _remove_stale_files(output_dir, written)
    return written


# The files the last report wrote into its folder, each with its sha256: a report written again into that folder
# removes those it no longer writes (a plan.csv, PNGs) if they are still as written, so the folder never mixes
# two reports; nothing else there is touched (another name, another kind of file, a file edited since).
REPORT_MANIFEST = ".recbench-report.json"
_REPORT_SUFFIXES = (".html", ".md", ".csv", ".png")


def _remove_stale_files(output_dir: Path, written: list[Path]) -> None:
    manifest = output_dir / REPORT_MANIFEST
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = {}
    names = {path.name for path in written}
    kept: dict[str, str] = {}  # stale files that could not be removed: tried again next time
    for name, digest in previous.items() if isinstance(previous, dict) else ():
        stale = output_dir / str(name)
        ours = isinstance(name, str) and name == Path(name).name and name.endswith(_REPORT_SUFFIXES)
        if not ours or name in names or not stale.is_file() or stale.is_symlink():
            continue
        try:
            if _sha256(stale) == digest:
                stale.unlink()
        except OSError as exc:
            kept[name] = digest
            warnings.warn(f"{stale}: left from an earlier report, not removed ({exc.strerror})", stacklevel=3)
    atomic_write_json(manifest, {**kept, **{path.name: _sha256(path) for path in sorted(written)}}, overwrite=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _order(point: OperatingPoint) -> tuple:
    return (point.scenario, point.params, point.batch_size, point.max_prompt_tokens, point.created_at, point.path)


# --------------------------------------------------------------------------------------------- tables


def _write_csv(path: Path, columns: Sequence[str] | None, rows: Iterable[dict[str, Any]]) -> Path:
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def _latency_rows(stored: StoredResult) -> list[dict[str, Any]]:
    result = stored.result
    base = {
        "result": str(stored.path),
        "scenario": result.scenario.name,
        "point": result.point.key,
        "machine": result.machine,
    }
    rows = []
    for stage, stats in result.summary.latency.stages.items():
        rows.append(
            {
                **base,
                "stage": str(stage),
                "n": stats.n,
                "p50_ms": to_ms(stats.p50),
                "p90_ms": to_ms(stats.p90),
                "p99_ms": to_ms(stats.p99),
                "mean_ms": to_ms(stats.mean),
            }
        )
    return rows


def _memory_row(stored: StoredResult) -> dict[str, Any]:
    result = stored.result
    estimate, measured = result.memory.analytic_estimate, result.memory.measured
    return {
        "result": str(stored.path),
        "scenario": result.scenario.name,
        "point": result.point.key,
        "model": result.model.label,
        "dtype": result.model.dtype,
        "batch_size": result.scenario.batch_size,
        "max_prompt_tokens": result.scenario.max_prompt_tokens,
        "weights_bytes": estimate.weights_bytes,
        "kv_cache_bytes": estimate.kv_cache_bytes,
        "activations_bytes": estimate.activations_bytes,
        "estimate_total_bytes": estimate.total_bytes,
        "rss_baseline_bytes": measured.rss_baseline,
        "rss_peak_bytes": measured.rss_peak,
        "rss_increase_bytes": measured.rss_peak - measured.rss_baseline,
        "cuda_peak_allocated_bytes": measured.cuda_peak_allocated,
        "cuda_peak_reserved_bytes": measured.cuda_peak_reserved,
    }


def _measured_memory(result: Result) -> tuple[float, str] | None:
    measured = result.memory.measured
    if measured.cuda_peak_allocated:
        return float(measured.cuda_peak_allocated), "measured CUDA peak allocated"
    if measured.rss_peak > measured.rss_baseline:
        return float(
            measured.rss_peak - measured.rss_baseline
        ), "measured RSS peak − baseline (includes framework overhead)"
    return None


def _work_row(stored: StoredResult) -> dict[str, Any]:
    """The LLM's work per batch, executed (padding included) and useful, and what padding cost."""
    result = stored.result
    llm = result.summary.flops.llm
    return {
        "result": str(stored.path),
        "scenario": result.scenario.name,
        "point": result.point.key,
        "batching": result.scenario.batching.padding,
        "prompt_padding_fraction": result.work.prompt_padding_fraction,
        "llm_flops_per_batch_executed": llm.flops_per_batch_mean,
        "llm_flops_per_batch_useful": llm.useful_flops_per_batch_mean,
        "padding_waste": llm.padding_waste,
        "achieved_flops_per_s_executed": llm.achieved_flops_per_s,
        "achieved_flops_per_s_useful": llm.useful_achieved_flops_per_s,
        "useful_fraction_of_measured_gemm_peak": llm.useful_fraction_of_measured_gemm_peak,
        "measured_gemm_peak_flops_per_s": llm.measured_gemm_peak_flops_per_s,
        "gemm_peak_method": result.peak.gemm.method,
        "note": llm.note,  # e.g. why achieved exceeds the peak
    }


def _energy_row(row: TierCost) -> dict[str, Any]:
    per_rec = row.energy_j_per_recommendation
    return {
        "result": row.point.path,
        "scenario": row.point.scenario,
        "point": row.point.point,
        "tier": row.timing.tier,
        "basis": str(row.basis),
        "energy_j_per_recommendation": per_rec,
        "energy_j_per_request": None if per_rec is None else per_rec * row.point.top_n,
        "energy_kind": str(row.energy_kind) if row.energy_kind else None,
        "energy_basis": row.energy_basis,
    }


def _plan_rows(plan: CapacityPlan) -> list[dict[str, Any]]:
    cheapest, settings = plan.cheapest, plan.settings
    rows = []
    for t in plan.tiers:
        chosen = t.chosen
        evaluation = chosen.point.evaluation if chosen else None
        rows.append(
            {
                "scenario": plan.scenario,
                "qps": settings.qps,
                "slo_p99_ms": settings.slo_p99_ms,
                "hours_per_day": settings.hours_per_day,
                "headroom": settings.headroom,
                "tier": t.tier,
                "fits": t.fits,
                "meets_slo": t.meets_slo,
                "cheapest": cheapest is not None and t is cheapest,
                "chosen_point": chosen.point.point if chosen else None,
                "chosen_batch_size": chosen.point.batch_size if chosen else None,
                "chosen_basis": str(chosen.basis) if chosen else None,
                "chosen_batch_p99_ms": to_ms(chosen.timing.batch_p99_s) if chosen else None,
                "requests_per_s_per_machine": t.requests_per_s_per_machine,
                "machines": t.machines,
                "rented_monthly_usd": t.rented_monthly_usd,
                "rented_cost_per_1m_recommendations_usd": t.rented_cost_per_1m_usd,
                "owned_monthly_usd": t.owned_monthly_usd,
                "owned_cost_per_1m_recommendations_usd": t.owned_cost_per_1m_usd,
                "include_owned": settings.include_owned,
                "min_ndcg": settings.min_ndcg,
                "chosen_lever": chosen.point.levers if chosen else None,
                "chosen_ndcg_mean": evaluation.ndcg_mean if evaluation else None,
                "chosen_ndcg_ci_low": evaluation.ndcg_ci.low if evaluation else None,
                "chosen_ndcg_ci_high": evaluation.ndcg_ci.high if evaluation else None,
                "reason": t.reason,
                "slo_basis": t.slo_basis,
                "latency_basis": plan.latency_basis,
            }
        )
    return rows


# ------------------------------------------------------------------------------------ figures, header


def _latency_bar(result: Result, point: OperatingPoint, single_scenario: bool) -> LatencyBar:
    stages = result.summary.latency.stages
    label = point.point if single_scenario else f"{point.scenario} [{point.point}]"
    return LatencyBar(
        label=label if len(label) <= 60 else label[:57] + "...",
        stage_p50_ms={s: to_ms(stages[s].p50) or 0.0 for s in LOOP_STAGES if s in stages},
        end_to_end_p50_ms=to_ms(stages[Stage.END_TO_END].p50) or 0.0,
        end_to_end_p99_ms=to_ms(stages[Stage.END_TO_END].p99) or 0.0,
    )


def _dedupe_labels(bars: list[LatencyBar], created: list[str]) -> None:
    """Repeated runs of one point get their timestamps, so each bar can be told apart."""
    counts: dict[str, int] = {}
    for bar in bars:
        counts[bar.label] = counts.get(bar.label, 0) + 1
    for bar, when in zip(bars, created, strict=True):
        if counts[bar.label] > 1:
            bar.label = f"{bar.label} @ {when[:19]}"


def _load_test_info(stored: StoredResult) -> LoadTestInfo:
    load = stored.result.load
    assert load is not None
    qps = load.peak_qps if load.peak_qps is not None else load.target_qps
    return LoadTestInfo(
        label=stored.label,
        mode=load.mode,
        verdict=str(load.verdict),
        loadgen_validity=load.loadgen_validity,
        qps=format_number(qps) if qps is not None else "",
        completed_qps=format_number(load.completed_samples_per_s),
        p50_ms=format_ms(load.latency_s.get("p50")),
        p99_ms=format_ms(load.latency_s.get("p99")),
        served=load.served,
        queries=load.queries,
        dropped=load.dropped,
        probes=", ".join(f"{format_number(p.qps)} {p.verdict}" for p in load.probes or []),
    )


def _result_info(stored: StoredResult, point: OperatingPoint) -> ResultInfo:
    env = stored.result.environment
    hardware = point.device_name if stored.result.device.is_cuda else point.fingerprint.describe()
    return ResultInfo(
        path=point.path,
        scenario=point.scenario,
        point=point.point,
        machine=point.machine,
        created_at=point.created_at,
        commit=env.git_commit,
        dirty=env.git_dirty,
        recbench_version=env.recbench_version,
        hardware=hardware,
    )


def _older_run(older: StoredResult, used: StoredResult) -> str:
    """The older file, and what the newer run's scenario changed, if anything (bench.results.reader.scenario_edit)."""
    edit = scenario_edit(older, used)
    return f"{older.path} (its scenario differs: {edit})" if edit else str(older.path)
