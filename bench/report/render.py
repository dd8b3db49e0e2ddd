"""The report's content, written once as a small document structure, and its two renderings: a
self-contained HTML page (inline CSS, figures as base64 PNG data URIs, no scripts, fonts or remote
resources) and Markdown that links the PNG files written next to it.

`compose` decides what the report says; `render_html` and `render_markdown` only decide how it looks, and
escape every piece of text they are given (HTML entities; Markdown punctuation and table pipes).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.core.formatting import (
    MISSING,
    format_bytes,
    format_energy,
    format_ms,
    format_number,
    format_percent,
    format_si,
    format_usd,
)
from bench.core.kinds import Basis, EnergyKind
from bench.cost.capacity import CapacityPlan, TierPlan
from bench.cost.levers import PAIRED_RESAMPLES, LeverComparison, QualityDelta, percent_change
from bench.cost.model import Calibration, TierCost
from bench.cost.quality import NO_EVALUATION, QualityCost, QualityCosts, ndcg_text
from bench.report.figures import energy_bases

# ------------------------------------------------------------------------------------- document structure


@dataclass(frozen=True)
class Span:
    text: str
    strong: bool = True  # a plain str is the unemphasised inline


Inline = str | Span


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    parts: list[Inline]
    note: bool = False  # a caveat: rendered smaller / in italics


@dataclass
class Facts:
    items: list[tuple[str, str]]  # label, value


@dataclass
class Image:
    title: str
    filename: str  # PNG next to report.md
    png: bytes  # embedded in report.html
    caption: str


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: frozenset[int] = frozenset()  # right-aligned column indexes
    strong_rows: frozenset[int] = frozenset()  # highlighted row indexes


Block = Heading | Paragraph | Facts | Image | Table


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- what it says


@dataclass(kw_only=True)
class ResultInfo:
    """The provenance of one result file, for the header."""

    path: str
    scenario: str
    point: str
    machine: str
    created_at: str
    commit: str | None
    dirty: bool | None
    recbench_version: str | None
    hardware: str  # CPU model and cores, or GPU name


@dataclass(kw_only=True)
class LoadTestInfo:
    """One load test, as the report's load-test table shows it."""

    label: str
    mode: str
    verdict: str
    loadgen_validity: str
    qps: str  # the target (or the peak a search found), formatted
    completed_qps: str
    p50_ms: str
    p99_ms: str
    served: int
    queries: int
    dropped: int
    probes: str  # "40 VALID, 80 VALID" for a peak search, "" otherwise


@dataclass
class FigureFile:
    name: str
    title: str
    filename: str
    png: bytes
    caption: str


@dataclass(kw_only=True)
class ReportContent:
    results: list[ResultInfo]
    rows: list[TierCost]
    plans: list[CapacityPlan]
    quality: QualityCosts | None = None  # results with an evaluation, on every tier
    levers: list[LeverComparison] = field(default_factory=list)
    calibrations: list[Calibration] = field(default_factory=list)
    launch_overhead_us: float | None = None  # measured on a GPU result
    gpu_tiers: frozenset[str] = frozenset()  # the tiers in `rows` that are GPUs
    figures: list[FigureFile]
    tables: list[str]  # CSV file names written next to the report
    figures_skipped: bool = False  # --no-figures
    generated_at: str
    generator_version: str
    measured_on: str | None = None
    load_tests: list[LoadTestInfo] = field(default_factory=list)
    work: list[dict[str, Any]] = field(default_factory=list)  # per result: executed vs useful LLM work
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (result, kind, message)
    superseded: list[tuple[str, str, str]] = field(default_factory=list)  # (point, file used, older file not used)


def compose(content: ReportContent) -> Document:
    doc = Document("recbench report")
    doc.blocks.append(Facts(_header(content)))
    doc.blocks.append(Heading("How to read this"))
    doc.blocks.extend(_how_to_read(content))
    if content.figures_skipped:
        doc.blocks.append(Paragraph(["Figures were not drawn (--no-figures); the tables below hold every figure."]))
    if content.figures:
        doc.blocks.append(Heading("Figures"))
        for fig in content.figures:
            doc.blocks.append(Heading(fig.title, 3))
            doc.blocks.append(Image(fig.title, fig.filename, fig.png, fig.caption))
    doc.blocks.append(Heading("Cost per tier"))
    doc.blocks.append(_cost_table(content.rows))
    doc.blocks.extend(_calibration_blocks(content))
    doc.blocks.extend(_quality_blocks(content))
    if content.levers:
        doc.blocks.extend(_lever_blocks(content.levers, content.gpu_tiers))
    for plan in content.plans:
        doc.blocks.extend(_plan_blocks(plan))
    if content.load_tests:
        doc.blocks.extend(_load_test_blocks(content.load_tests))
    if any(w.get("padding_waste") is not None for w in content.work):
        doc.blocks.extend(_work_blocks(content.work))
    if content.warnings or content.superseded:
        doc.blocks.extend(_warning_blocks(content))
    if content.tables:
        doc.blocks.append(Heading("Data files"))
        doc.blocks.append(
            Paragraph([f"Tables written next to this report (CSV, one row per figure): {', '.join(content.tables)}."])
        )
    return doc


LOAD_COLUMNS = ["point", "mode", "verdict", "LoadGen", "QPS", "completed QPS", "p50 ms", "p99 ms", "served",
                "dropped", "peak search"]  # fmt: skip


def _load_test_blocks(tests: Sequence[LoadTestInfo]) -> list[Block]:
    rows = [
        [t.label, t.mode, t.verdict, t.loadgen_validity, t.qps, t.completed_qps, t.p50_ms, t.p99_ms,
         f"{t.served} of {t.queries}", str(t.dropped), t.probes]
        for t in tests
    ]  # fmt: skip
    caption = (
        "MLPerf LoadGen runs on the benchmark machine (measured). Verdict VALID only if LoadGen says so, no query "
        "was dropped and the wall-time bound never fired. Latency: served queries from arrival to completion, "
        "queueing included; a dropped query is never counted."
    )
    return [Heading("Load tests"), Table(LOAD_COLUMNS, rows, caption, frozenset({4, 5, 6, 7, 9}))]


def _work_blocks(work: Sequence[dict[str, Any]]) -> list[Block]:
    """Padding: the LLM's executed work against the useful part, measured on the benchmark machine."""
    rows = [
        [f"{w['scenario']} [{w['point']}]", str(w["batching"]),
         format_percent(w["prompt_padding_fraction"]) if w["prompt_padding_fraction"] is not None else MISSING,
         format_percent(w["padding_waste"]) if w["padding_waste"] is not None else MISSING,
         format_si(w["achieved_flops_per_s_executed"], "FLOP/s"), format_si(w["achieved_flops_per_s_useful"], "FLOP/s"),
         format_percent(w["useful_fraction_of_measured_gemm_peak"])
         if w["useful_fraction_of_measured_gemm_peak"] is not None else MISSING,
         format_si(w["measured_gemm_peak_flops_per_s"], "FLOP/s")
         if w["measured_gemm_peak_flops_per_s"] is not None else MISSING]
        for w in work
    ]  # fmt: skip
    columns = ["point", "batching", "prompt padding", "FLOPs on padding*", "achieved (executed)*",
               "achieved (useful)*", "useful of GEMM peak*", "GEMM peak"]  # fmt: skip
    caption = (
        "Batching longest and bucketed pad each batch to its longest prompt; packed runs a batch's prompts end to "
        "end without padding. * FLOPs are analytic estimates for the batches as run (executed) and for the same "
        "requests unpadded (useful), over the measured LLM time. GEMM peak: the best "
        "square GEMM this machine has shown (on a CPU the faster of torch.matmul and oneDNN), kept in the results "
        "folder and measured again by the first run a day after its last check; how each was measured is in "
        "work.csv (gemm_peak_method)."
    )
    noted: dict[str, list[str]] = {}  # one line per distinct note, naming the points it is on
    for w in work:
        if w.get("note"):
            noted.setdefault(w["note"], []).append(f"{w['scenario']} [{w['point']}]")
    caption += "".join(f" {', '.join(points)}: {note}." for note, points in noted.items())
    return [Heading("LLM work and padding"), Table(columns, rows, caption, frozenset({2, 3, 4, 5, 6, 7}))]


def _warning_blocks(content: ReportContent) -> list[Block]:
    blocks: list[Block] = [Heading("Warnings")]
    if content.warnings:
        rows = [[label, kind, message] for label, kind, message in content.warnings]
        blocks.append(Table(["result", "kind", "warning"], rows, "As recorded in each result when it ran."))
    if content.superseded:
        rows = [[label, used, older] for label, used, older in content.superseded]
        caption = "Repeated runs of one point: the newest is used throughout this report; older ones are listed here."
        blocks.append(Table(["point", "used (newest)", "older run, not used"], rows, caption))
    return blocks


def _distinct(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(v for v in values if v not in (None, "")))


def _header(c: ReportContent) -> list[tuple[str, str]]:
    scenarios = _distinct([r.scenario for r in c.results])
    counts = {s: sum(r.scenario == s for r in c.results) for s in scenarios}
    machines = _distinct([f"{r.machine} ({r.hardware})" for r in c.results])
    dates = sorted(r.created_at for r in c.results if r.created_at)
    commits = _distinct(
        [f"{r.commit[:12]}{' (dirty)' if r.dirty else ''}" if r.commit else "unknown" for r in c.results]
    )
    versions = _distinct([r.recbench_version or "unknown" for r in c.results])
    measured = ", ".join(s + f" ({counts[s]} result{'s' if counts[s] != 1 else ''})" for s in scenarios)
    span = f"{dates[0][:19]} to {dates[-1][:19]} UTC" if dates and dates[0] != dates[-1] else (dates or ["?"])[0][:19]
    return [
        ("Scenarios", measured or "none"),
        ("Machines", ", ".join(machines) or "unknown"),
        ("Measured", span),
        ("Report generated", c.generated_at),
        ("Git commit", ", ".join(commits) or "unknown"),
        ("recbench version", f"{', '.join(versions)} (results); {c.generator_version} (report)"),
    ]


def _how_to_read(c: ReportContent) -> list[Block]:
    homes = _distinct([r.timing.tier for r in c.rows if r.basis == "measured"])
    projected = _distinct([r.timing.tier for r in c.rows if r.basis == "projected"])
    parts: list[Inline] = [
        "Measured on the benchmark machine: ",
        Span("latency per stage, end-to-end latency, memory use"),
        " (the latency figure and latency.csv).",
    ]
    if homes:
        parts += [
            " Costs on the tier the results were measured on (",
            Span(", ".join(homes)),
            ") use that measured latency and the catalogue price.",
        ]
    else:
        parts += [" No tier was identified as the benchmark machine, so every cost below is projected."]
    parts += [
        " Costs on every other tier are ",
        Span("projected (estimates)"),
        ": host-side work (the stages other than scoring, and scoring's prompt building and score reading) keeps "
        "its measured median; the LLM's forwards take the roofline time of their FLOPs and bytes, operator kind by "
        "kind (matmuls, attention, LM head) and summed, against the tier's catalogue peak and bandwidth times an "
        "efficiency (see the Calibration section), and on a "
        "GPU never less than its kernels x the engine's per-launch overhead. A projected p99 is the projected p50 "
        "times the measured p99/p50 ratio",
    ]
    errors = [r.projection_error for r in c.rows if r.projection_error is not None]
    if errors:
        worst = max(errors, key=abs)
        parts.append(
            f". On the measured tier the uncalibrated projection was off by up to {worst:+.0%} "
            "(the projection error column)"
        )
    parts.append(".")
    blocks: list[Block] = [Paragraph(parts)]
    if projected:
        blocks.append(Paragraph([f"Projected tiers: {', '.join(projected)}."], note=True))
    memory = (
        "Memory need (weights, KV cache, activations) is an analytic estimate, checked against each tier's "
        "catalogue capacity; tiers where it does not fit get no latency or cost."
    )
    bases = "; ".join(f"“{basis}” on {', '.join(tiers)}" for basis, tiers in energy_bases(c.rows).items())
    energy = "Energy per recommendation says measured or modelled in the energy column; the bases"
    energy += f": {bases}." if bases else ": none (no energy figure)."
    if not any(r.energy_kind == EnergyKind.MEASURED for r in c.rows):
        energy += (
            " No energy counter was read: every energy figure is an estimate from TDP. Full TDP over the batch time"
            " (the median batch) is the one basis that applies to projected tiers too; the figure `recbench show`"
            " prints for a result covers every timed batch and scales TDP by the CPU utilisation it measured, so it"
            " is lower where that was below 100% and higher where slow batches lift the mean above the median."
        )
    blocks.append(Paragraph([memory, " ", energy]))
    blocks.append(
        Paragraph(
            [
                "Cost per 1M recommendations = hourly cost / recommendations per hour x 1e6, with batches served "
                "back to back at the point's batch size (full utilisation). Two hourly costs, never mixed: ",
                Span("rented"),
                " (the catalogue's on-demand price) and ",
                Span("owned"),
                " (purchase price amortised over the hardware's life, plus electricity x PUE at this point's draw).",
            ],
            note=True,
        )
    )
    return blocks


def _calibration_blocks(c: ReportContent) -> list[Block]:
    """Which results calibrated which tier, and the rule, so a reader can check every projection's source."""
    rule = (
        "Calibration: for each point measured on a catalogue tier, scale = (projection at the catalogue's default "
        "efficiencies) / (measured LLM time). A tier's efficiencies are its defaults x the median scale of the "
        "points measured on it with the same model (all models where that model was not measured there); a tier "
        "with no measurement of its own takes the median scale of the measured tiers of its kind (CPU or GPU); "
        "otherwise the catalogue defaults. The order of the input files changes nothing."
    )
    blocks: list[Block] = [Heading("Calibration"), Paragraph([rule], note=True)]
    if c.calibrations:
        rows = [
            [cal.tier, cal.model or "(all models)", format_number(cal.scale), format_percent(cal.efficiency.compute),
             format_percent(cal.efficiency.memory), str(len(cal.results))]
            for cal in c.calibrations
        ]  # fmt: skip
        columns = ["tier", "model", "scale", "compute efficiency", "memory efficiency", "results"]
        blocks.append(Table(columns, rows, "The results behind each row: calibration.csv.", frozenset({2, 3, 4, 5})))
    else:
        blocks.append(Paragraph(["No result was measured on a catalogue tier: catalogue defaults throughout."]))
    sources = {r.timing.tier: r.timing.efficiency.source for r in c.rows if r.timing.efficiency is not None}
    if sources:
        rows = [[tier, source] for tier, source in sources.items()]
        blocks.append(Table(["tier", "efficiencies used for its projections"], rows, "Per projected tier."))
    if c.launch_overhead_us is not None:
        blocks.append(
            Paragraph([f"Per-launch overhead measured on a GPU result: {c.launch_overhead_us:.3g} µs per operator."])
        )
    gpu_bounds = {r.timing.llm_bound for r in c.rows if r.basis == "projected" and r.timing.tier in c.gpu_tiers}
    if gpu_bounds == {"launch"}:
        blocks.append(
            Paragraph(
                [
                    "On every GPU tier the LLM's forwards are bound by kernel launches (eager PyTorch launches each "
                    "operator from the CPU, bench/hardware/engines.yaml): the model is too small for the GPU's "
                    "arithmetic or bandwidth to matter, so GPU tiers differ here only in price."
                ],
                note=True,
            )
        )
    return blocks


def _quality_blocks(c: ReportContent) -> list[Block]:
    """Quality per result (evaluation NDCG with its interval), with its cost on the measured and cheapest tier;
    one line saying what quality needs when no result has an evaluation."""
    blocks: list[Block] = [Heading("Quality against cost")]
    quality = c.quality
    if quality is None or not quality.items:
        blocks.append(Paragraph([NO_EVALUATION[0].upper() + NO_EVALUATION[1:] + "."], note=True))
        return blocks
    body = []
    for point_id in dict.fromkeys(id(q.point) for q in quality.items):
        items = [q for q in quality.items if id(q.point) == point_id]
        point, evaluation = items[0].point, items[0].point.evaluation
        assert evaluation is not None
        home = next((q for q in items if q.measured), None)
        priced = [q for q in items if q.cost is not None]
        cheapest = min(priced, key=lambda q: (q.cost or 0.0, q.row.timing.tier), default=None)
        front = [q.row.timing.tier for q in items if q.pareto]
        body.append([
            f"{point.scenario} [{point.point}]", items[0].label, ndcg_text(point),
            format_number(evaluation.chance_ndcg), _p_value(evaluation.p_value_ndcg), str(evaluation.users),
            f"{home.row.timing.tier}: {format_usd(home.cost)}" if home else MISSING,
            _tier_cost(cheapest), ", ".join(front) or "no",
        ])  # fmt: skip
    columns = ["point", "lever", "NDCG [95% CI]", "chance NDCG", "p (vs chance)", "users", "measured tier $/1M",
               "cheapest tier $/1M", "Pareto-optimal on"]  # fmt: skip
    caption = (
        "NDCG@k: mean over a fixed set of evaluation users (the same for every lever of a scenario), 95% bootstrap "
        "interval; p: one-sided test against a uniformly random ranking. Costs are rented USD per 1M "
        "recommendations; * projected (an estimate, which does not model an optimize lever's effect on that tier: "
        "there it and its baseline differ only in host-side time). Pareto-optimal on: the tiers where no other (tier, "
        "lever) is at most as costly and at least as good. Every (result, tier) is in quality.csv."
    )
    blocks.append(Table(columns, body, caption, frozenset({3, 4, 5})))
    if quality.unevaluated:
        blocks.append(
            Paragraph([f"{len(quality.unevaluated)} result(s) have no quality evaluation and take no part."], note=True)
        )
    return blocks


def _tier_cost(item: QualityCost | None) -> str:
    if item is None:
        return MISSING
    return f"{item.row.timing.tier}: {format_usd(item.cost)}{_projected(item.row)}"


def _p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _projected(row: TierCost | None) -> str:
    return "*" if row is not None and row.basis == Basis.PROJECTED else ""


def _change(value: float | None) -> str:
    return format_percent(value, signed=True) if value is not None else MISSING


def _cost_pair(pair: tuple[TierCost, TierCost | None] | None, has_baseline: bool) -> str:
    """`l4: $0.012 vs $0.013 (-8%)*`, the lever's cost first."""
    if pair is None:
        return MISSING
    row, base = pair
    tier = f"{row.timing.tier}: "
    if row.rented_cost_per_1m_usd is None:
        if row.point.cpu_only and row.timing.batch_p50_s is None:
            return f"n/a: {row.point.cpu_only} runs on a CPU only"
        return tier + (row.timing.notes[0] if row.timing.notes else "no cost")
    text = tier + format_usd(row.rented_cost_per_1m_usd)
    if has_baseline and base is not None:
        change = _change(percent_change(row.rented_cost_per_1m_usd, base.rented_cost_per_1m_usd))
        text += f" vs {format_usd(base.rented_cost_per_1m_usd)} ({change})"
    return text + _projected(row)


def _delta(delta: QualityDelta | None, note: str) -> tuple[str, str]:
    if delta is None:
        return note or MISSING, ""
    return f"{delta.mean:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]", delta.verdict


LEVER_TABLE_COLUMNS = ["lever", "point", "baseline", "batch p50 ms (lever vs baseline)", "p50 change",
                       "measured tier $/1M (lever vs baseline)", "cheapest GPU tier $/1M (projected*)",
                       "ΔNDCG [95% CI]", "quality change"]  # fmt: skip


def _lever_blocks(levers: Sequence[LeverComparison], gpu_tiers: frozenset[str]) -> list[Block]:
    body = []
    for c in levers:
        has_baseline = c.baseline is not None
        p50 = format_ms(c.lever.batch_p50_s) + (f" vs {format_ms(c.baseline.batch_p50_s)}" if c.baseline else "")
        delta, verdict = _delta(c.quality, c.quality_note)
        body.append([
            c.label, f"{c.lever.scenario} [{c.lever.point}]",
            c.baseline.point if c.baseline else "no baseline measured", p50, _change(c.p50_change),
            _cost_pair(c.measured(), has_baseline), _cost_pair(c.cheapest_gpu(gpu_tiers), has_baseline),
            delta, verdict,
        ])  # fmt: skip
    caption = (
        "Each lever against its baseline: the result identical but for `optimize` and `batching` (name, description "
        "and sweep bookkeeping aside), measured on the same machine, with the default levers (failing that, for a "
        "point pulling both kinds, the one holding its optimize levers with padded batches, then the one holding "
        "its batching without optimize levers); of several, the newest. Latency: end-to-end batch p50, measured "
        "(for bucketed batches, which differ in length by design, the typical batch: the median "
        "over bucketing windows of each window's mean). Costs: rented USD per 1M recommendations, lever vs "
        "baseline; * projected (an estimate): the roofline projects each point's own FLOPs and bytes, the same for "
        "an optimize lever and its baseline, so on projected tiers an optimize lever's effect on the LLM is not "
        "modelled (only host-side time differs); a batching lever's FLOPs and bytes (less padding) are. ΔNDCG = "
        f"lever - baseline, paired over the same evaluation users, 95% paired bootstrap interval ({PAIRED_RESAMPLES} "
        "resamples); not significant where "
        "the interval spans 0. Every tier is in levers.csv."
    )
    return [Heading("Levers"), Table(LEVER_TABLE_COLUMNS, body, caption, frozenset({3, 4}))]


def _point_label(row: TierCost) -> str:
    return f"{row.point.scenario} [{row.point.point}]"


COST_COLUMNS = [
    "point",
    "tier",
    "basis",
    "dtype",
    "memory need / capacity",
    "batch p50 ms",
    "batch p99 ms",
    "requests/s",
    "rented USD/h",
    "rented USD per 1M recs",
    "owned USD/h",
    "owned USD per 1M recs",
    "J per rec",
    "energy",
    "projection error",
    "LLM bound",
]


def _cheapest_cost(row: TierCost) -> float | None:
    return row.rented_cost_per_1m_usd if row.rented_cost_per_1m_usd is not None else row.owned_cost_per_1m_usd


def _cost_table(rows: Sequence[TierCost]) -> Table:
    """Every point on every tier, cheapest rented first within a point (owned-only tiers after); no cost last."""
    order: dict[int, int] = {}
    for row in rows:
        order.setdefault(id(row.point), len(order))
    ranked = sorted(
        rows,
        key=lambda r: (
            order[id(r.point)],
            r.rented_cost_per_1m_usd is None,
            _cheapest_cost(r) is None,
            _cheapest_cost(r) or 0.0,
            r.timing.tier,
        ),
    )
    body, strong = [], set()
    previous = None
    for row in ranked:
        t = row.timing
        first = id(row.point) != previous
        previous = id(row.point)
        if first and row.rented_cost_per_1m_usd is not None:
            strong.add(len(body))
        fit = f"{format_bytes(t.memory_need_bytes)} / {format_bytes(t.memory_capacity_bytes)}"
        body.append(
            [
                _point_label(row) if first else "",
                t.tier,
                str(t.basis),
                t.dtype,
                fit if t.fits else f"{fit} (does not fit)",
                format_ms(t.batch_p50_s),
                format_ms(t.batch_p99_s),
                format_number(row.requests_per_s),
                format_usd(row.rented_hourly_usd),
                format_usd(row.rented_cost_per_1m_usd),
                format_usd(row.owned_hourly_usd),
                format_usd(row.owned_cost_per_1m_usd),
                format_energy(row.energy_j_per_recommendation),
                str(row.energy_kind) if row.energy_kind else MISSING,
                format_percent(row.projection_error, signed=True) if row.projection_error is not None else "",
                t.llm_bound or "",
            ]
        )
    p99_bases = "; ".join(_distinct([f"{r.timing.basis}: {r.timing.p99_basis}" for r in rows if r.timing.p99_basis]))
    caption = (
        "Per point, the cheapest rented tier first (in bold). basis: measured = latency measured on that tier, "
        "projected = roofline estimate. projection error = uncalibrated projection / measurement - 1, on the "
        f"measured tier. p99: {p99_bases or MISSING}. All rows, unrounded, in costs.csv."
    )
    return Table(COST_COLUMNS, body, caption, frozenset(range(5, 15)), frozenset(strong))


PLAN_COLUMNS = [
    "tier",
    "fits",
    "meets SLO",
    "batch chosen",
    "point chosen",
    "basis",
    "batch p99 ms",
    "throughput per machine (req/s)",
    "machines",
    "rented monthly",
    "rented USD per 1M recs",
    "owned monthly",
    "owned USD per 1M recs",
    "SLO checked on",
    "note",
]


def _plan_blocks(plan: CapacityPlan) -> list[Block]:
    cheapest, settings = plan.cheapest, plan.settings
    owned = settings.include_owned
    ordered = sorted(
        plan.tiers,
        key=lambda t: (t.monthly_cost_usd(owned) is None, t.monthly_cost_usd(owned) or 0.0, not t.meets_slo,
                       not t.fits, t.tier),
    )  # fmt: skip
    body, strong = [], set()
    bar = plan.quality
    for i, t in enumerate(ordered):
        if cheapest is not None and t is cheapest:
            strong.add(i)
        row = _plan_row(t)
        if bar is not None:
            row[5:5] = [t.chosen.point.levers if t.chosen else "", ndcg_text(t.chosen.point) if t.chosen else ""]
        body.append(row)
    among = (
        "rented and owned tiers" if owned else "rented tiers (owned hardware is listed, not chosen: --include-owned)"
    )
    blocks: list[Block] = [
        Heading(f"Capacity plan: {plan.scenario}"),
        Paragraph(
            [
                f"Target {settings.qps:g} requests/s with batch p99 at most {settings.slo_p99_ms:g} ms, "
                f"{settings.hours_per_day:g} hours a day, {settings.headroom:.0%} headroom. Per tier, the operating "
                f"point that meets the SLO with the highest throughput per machine is chosen; cheapest among {among}."
                + (
                    f" Quality bar: NDCG >= {bar.min_ndcg:g}; the levers are a choice like the batch size."
                    if bar is not None
                    else ""
                )
            ]
        ),
    ]
    if bar is not None:
        blocks.append(Paragraph(["; ".join(line[0].upper() + line[1:] for line in bar.notes()) + "."], note=True))
    if cheapest is not None:
        chosen = cheapest.chosen
        monthly = cheapest.monthly_cost_usd(owned)
        kind = "rented" if monthly == cheapest.rented_monthly_usd else "owned"
        per_1m = cheapest.rented_cost_per_1m_usd if kind == "rented" else cheapest.owned_cost_per_1m_usd
        blocks.append(
            Paragraph(
                [
                    "Cheapest tier meeting the SLO: "
                    if bar is None
                    else "Cheapest tier and lever meeting the SLO and the quality bar: ",
                    Span(cheapest.tier),
                    f" — {cheapest.machines} machine{'s' if cheapest.machines != 1 else ''}, {kind}, "
                    f"{format_usd(monthly)} a month, {format_usd(per_1m)} per 1M recommendations"
                    + (f" ({chosen.basis} latency at batch {chosen.point.batch_label}" if chosen else "")
                    + (f"; lever {chosen.point.levers}, {ndcg_text(chosen.point)}" if chosen and bar else "")
                    + (")." if chosen else "."),
                ]
            )
        )
    elif bar is not None and not bar.qualified:
        blocks.append(Paragraph([Span(bar.nothing_qualifies[0].upper() + bar.nothing_qualifies[1:]), "."]))
        return blocks
    else:
        blocks.append(
            Paragraph(
                [Span("No tier meets the SLO"), " with the measured or projected operating points"]
                + ([" that reach the quality bar."] if bar is not None else ["."])
            )
        )
    if bar is None:
        blocks.append(Table(PLAN_COLUMNS, body, "", frozenset({3, 6, 7, 8, 9, 10, 11, 12}), frozenset(strong)))
    else:
        columns = [*PLAN_COLUMNS[:5], "lever chosen", "NDCG [95% CI]", *PLAN_COLUMNS[5:]]
        blocks.append(Table(columns, body, "", frozenset({3, 8, 9, 10, 11, 12, 13, 14}), frozenset(strong)))
    weak = sorted({t.slo_basis for t in plan.tiers if t.slo_weak})
    notes = [
        f"Latency basis: {plan.latency_basis}.",
        " Monthly costs and cost per 1M recommendations are at the target load (the machines needed, for the hours "
        "used), not at full utilisation as in the cost table.",
    ]
    if weak:
        notes.append(f" (weak): {'; '.join(weak)}.")
    if bar is not None:
        notes.append(
            " On projected tiers the lever chosen rests on an estimate that does not model an optimize lever's "
            "effect there (only host-side time differs): measure the chosen lever on that tier before buying."
        )
    blocks.append(Paragraph(notes, note=True))
    return blocks


def _plan_row(t: TierPlan) -> list[str]:
    chosen = t.chosen
    return [
        t.tier,
        "yes" if t.fits else "no",
        "yes" if t.meets_slo else "no" if t.has_latency else "n/a",  # n/a: no latency on this tier to judge
        chosen.point.batch_label if chosen else "",
        chosen.point.point if chosen else "",
        str(chosen.basis) if chosen else "",
        format_ms(chosen.timing.batch_p99_s) if chosen else "",
        format_number(t.requests_per_s_per_machine) if t.requests_per_s_per_machine else "",
        str(t.machines) if t.machines is not None else "",
        format_usd(t.rented_monthly_usd),
        format_usd(t.rented_cost_per_1m_usd),
        format_usd(t.owned_monthly_usd),
        format_usd(t.owned_cost_per_1m_usd),
        ("load test" if t.reason == "from a load test" else "isolated batches" + (" (weak)" if t.slo_weak else ""))
        if t.meets_slo
        else "",
        t.reason if t.reason != "from a load test" else "",
    ]


# ----------------------------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1400px; padding: 0 1.5rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .4rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: .15rem 1rem; margin: 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
p.note { font-size: .9rem; color: #57606a; font-style: italic; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { font-size: .9rem; color: #57606a; margin-top: .3rem; }
.table-wrap { overflow-x: auto; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .82rem; }
th, td { border: 1px solid #d0d7de; padding: .2rem .45rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:not(.num) { overflow-wrap: anywhere; max-width: 26rem; }  /* long point labels wrap: the table fits the page */
tr.strong td { font-weight: 600; background: #f0f7ee; }
caption { caption-side: bottom; text-align: left; font-size: .85rem; color: #57606a; padding-top: .3rem; }
"""


NUM = ' class="num"'
STRONG = ' class="strong"'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(parts: Sequence[Inline]) -> str:
    out = []
    for part in parts:
        if isinstance(part, Span):
            out.append(f"<strong>{_esc(part.text)}</strong>" if part.strong else _esc(part.text))
        else:
            out.append(_esc(part))
    return "".join(out)


def render_html(doc: Document) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(doc.title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_esc(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        out.append(_html_block(block))
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 1), 6)
        return f"<h{level}>{_esc(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        attrs = ' class="note"' if block.note else ""
        return f"<p{attrs}>{_html_inline(block.parts)}</p>"
    if isinstance(block, Facts):
        items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in block.items)
        return f'<dl class="facts">{items}</dl>'
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        caption = f"<figcaption>{_esc(block.caption)}</figcaption>" if block.caption else ""
        return f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(block.title)}">{caption}</figure>'
    if isinstance(block, Table):
        head = "".join(f"<th>{_esc(c)}</th>" for c in block.columns)
        rows = []
        for i, row in enumerate(block.rows):
            cells = "".join(f"<td{NUM if j in block.numeric else ''}>{_esc(cell)}</td>" for j, cell in enumerate(row))
            rows.append(f"<tr{STRONG if i in block.strong_rows else ''}>{cells}</tr>")
        caption = f"<caption>{_esc(block.caption)}</caption>" if block.caption else ""
        return (
            f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    raise TypeError(f"unknown block {type(block).__name__}")


# ------------------------------------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def md_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation (pipes included, for table cells) and flatten newlines."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\r", " ").replace("\n", " ")


def _md_inline(parts: Sequence[Inline]) -> str:
    out = []
    for part in parts:
        if isinstance(part, Span):
            out.append(f"**{md_escape(part.text)}**" if part.strong else md_escape(part.text))
        else:
            out.append(md_escape(part))
    return "".join(out)


def render_markdown(doc: Document) -> str:
    out = [f"# {md_escape(doc.title)}", ""]
    for block in doc.blocks:
        out.append(_md_block(block))
        out.append("")
    return "\n".join(out)


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * min(max(block.level, 1), 6)} {md_escape(block.text)}"
    if isinstance(block, Paragraph):
        text = _md_inline(block.parts)
        return f"*{text}*" if block.note else text
    if isinstance(block, Facts):
        return "\n".join(f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in block.items)
    if isinstance(block, Image):
        target = block.filename.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
        lines = [f"![{md_escape(block.title)}]({target})"]
        if block.caption:
            lines += ["", f"*{md_escape(block.caption)}*"]
        return "\n".join(lines)
    if isinstance(block, Table):
        lines = [
            "| " + " | ".join(md_escape(c) for c in block.columns) + " |",
            "|" + "|".join("---:" if j in block.numeric else "---" for j in range(len(block.columns))) + "|",
        ]
        for i, row in enumerate(block.rows):
            cells = [md_escape(cell) for cell in row]
            if i in block.strong_rows:
                cells = [f"**{cell}**" if cell else cell for cell in cells]
            lines.append("| " + " | ".join(cells) + " |")
        if block.caption:
            lines += ["", f"*{md_escape(block.caption)}*"]
        return "\n".join(lines)
    raise TypeError(f"unknown block {type(block).__name__}")
