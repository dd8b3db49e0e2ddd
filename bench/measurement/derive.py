"""Figures derived from a point's raw samples and counts, computed once when its result is assembled and
read from the result by everyone else: latency statistics, throughput, analytic and achieved FLOP/s,
utilisation, prompt sharing, the work done, ranking quality and energy per request."""

from __future__ import annotations

from bench.core.device import Device
from bench.core.kinds import BUCKETED_THROUGHPUT_BASIS, EnergyMethod, WarningKind
from bench.core.stages import Stage
from bench.core.stats import MIN_SAMPLES_FOR_P99, summarize, typical_batch
from bench.hardware.devices import lookup_device_peak
from bench.loop.pipeline import BatchRecord
from bench.loop.ranking import chance_hit_rate, chance_ndcg
from bench.measurement.strategy import ThroughputSource
from bench.models.analytic import ForwardShape, total_forward_bytes, total_forward_flops
from bench.models.architecture import Architecture
from bench.results.model import (
    Energy,
    FlopsSummary,
    GemmPeakInfo,
    LatencyStats,
    LatencySummary,
    LlmFlops,
    PromptSharing,
    Quality,
    QualityEvaluation,
    ResultWarning,
    StageFlops,
    Throughput,
    Work,
)
from bench.scenarios.spec import Scenario
from bench.trackers.energy import EnergyResult, co2_grams


def latency_summary(samples: dict[Stage, list[float]]) -> LatencySummary:
    return LatencySummary(stages={stage: _stats(values) for stage, values in samples.items() if values})


def _stats(values: list[float]) -> LatencyStats:
    figures = summarize(values).to_dict()
    cv = figures["cv"]
    figures["cv"] = None if cv != cv else cv  # undefined (a mean of 0): null in JSON, not NaN
    return LatencyStats(**figures)


def throughput(
    scenario: Scenario,
    work: Work,
    latency: LatencySummary,
    source: ThroughputSource | None,
    end_to_end_s: list[float] | None = None,
) -> Throughput:
    """Requests/s (measured directly by a load test, or batch_size / a typical end-to-end batch latency: the median,
    or with bucketed batching the median of window means, bench.core.stats.typical_batch) and what follows from
    it per request; token latencies for generate scoring."""
    stages = latency.stages
    # Token figures follow from fixed-size batches; a load test's batches vary in size, and LoadGen reports its
    # own time to first token and per output token in the load section.
    decode = stages.get(Stage.LLM_DECODE_TOKEN) if source is None else None
    prefill = stages.get(Stage.LLM_PREFILL)
    window = scenario.batching.typical_window
    if source is None and window > 1 and end_to_end_s:
        source = ThroughputSource(
            requests_per_s=scenario.batch_size / typical_batch(end_to_end_s, window),
            basis=BUCKETED_THROUGHPUT_BASIS,
        )
    if source is None:
        source = ThroughputSource(
            requests_per_s=scenario.batch_size / stages[Stage.END_TO_END].p50,
            basis="batch_size / median end-to-end batch latency",
        )
    rate = source.requests_per_s
    return Throughput(
        basis=source.basis,
        requests_per_s=rate,
        recommendations_per_s=rate * scenario.workload.top_n,
        candidates_scored_per_s=rate * scenario.workload.candidates,
        prompt_tokens_per_s=rate * work.prompt_tokens_mean,
        time_to_first_token_s=prefill.p50 if decode and prefill else None,
        time_per_output_token_s=decode.p50 if decode else None,
        decode_tokens_per_s=scenario.batch_size / decode.p50 if decode else None,
    )


def analytic_stage_bytes(arch: Architecture, record: BatchRecord, dtype: str) -> dict[Stage, int]:
    """Memory traffic estimates for one batch (float32 embeddings outside the LLM)."""
    batch, history, dim = record.interest_shape
    _, items, _ = record.retrieval_shape
    return {
        Stage.PREPROCESS: 0,
        Stage.INTEREST: 4 * batch * history * dim,  # gathered history embeddings
        Stage.CANDIDATES: 4 * items * dim,  # the catalogue's embeddings, read once per batch
        Stage.SCORING: total_forward_bytes(arch, record.forwards, dtype=dtype),
        Stage.RANK_FEEDBACK: 4 * batch * history * dim,
    }


def analytic_stage_flops(arch: Architecture, record: BatchRecord) -> dict[Stage, int]:
    """Estimates for one batch, from the shapes that batch actually ran."""
    batch, history, dim = record.interest_shape
    _, items, _ = record.retrieval_shape
    return {
        Stage.PREPROCESS: 0,
        Stage.INTEREST: 2 * batch * history * dim,  # weighted sum: (1 x H) @ (H x d) per user
        Stage.CANDIDATES: 2 * batch * items * dim,  # similarity to every item: (B x d) @ (d x I)
        Stage.SCORING: total_forward_flops(arch, record.forwards),
        Stage.RANK_FEEDBACK: 2 * batch * history * dim,  # feedback affinity: (H x d) @ d per user
    }


def flops_summary(
    *,
    arch: Architecture,
    dtype: str,
    scenario: Scenario,
    counted: dict[Stage, int],
    calibration: BatchRecord,
    records: list[BatchRecord],
    samples: dict[Stage, list[float]],
    gemm_peak: GemmPeakInfo,
    device_name: str,
) -> FlopsSummary:
    """Counted FLOPs exist for the calibration batch only, and prompt lengths differ from batch to batch; so
    the timed batches' FLOPs are the analytic figures for their own shapes, checked against the counter on
    the calibration batch, and achieved FLOP/s is total FLOPs over total time of the timed batches."""
    calibration_analytic = analytic_stage_flops(arch, calibration)
    timed = [analytic_stage_flops(arch, record) for record in records]
    moved = [analytic_stage_bytes(arch, record, dtype) for record in records]
    stages: dict[Stage, StageFlops] = {}
    for stage, flops in counted.items():
        total_flops = sum(batch[stage] for batch in timed)
        total_s = sum(samples[stage])
        stages[stage] = StageFlops(
            counted_flops=flops,
            analytic_flops_estimate=calibration_analytic[stage],
            timed_batches_flops_mean=total_flops / len(timed),
            timed_batches_bytes_moved_estimate_mean=sum(batch[stage] for batch in moved) / len(moved),
            achieved_flops_per_s=total_flops / total_s if total_s > 0 else None,
        )
    llm_flops = sum(batch[Stage.SCORING] for batch in timed)
    llm_seconds = sum(sum(values) for stage, values in samples.items() if stage.is_llm)
    achieved = llm_flops / llm_seconds if llm_seconds > 0 else None
    llm = utilisation(
        achieved=achieved,
        flops_per_batch_mean=llm_flops / len(timed),
        seconds_per_batch_mean=llm_seconds / len(timed),
        gemm_peak=gemm_peak,
        device=Device.parse(scenario.device),
        device_name=device_name,
        dtype=dtype,
    )
    useful = sum(total_forward_flops(arch, record.useful_forwards) for record in records)
    if useful and llm_flops:
        peak = gemm_peak.flops_per_s
        llm.useful_flops_per_batch_mean = useful / len(records)
        llm.padding_waste = max(0.0, 1 - useful / llm_flops)
        llm.useful_achieved_flops_per_s = useful / llm_seconds if llm_seconds > 0 else None
        if llm.useful_achieved_flops_per_s is not None:
            llm.useful_fraction_of_measured_gemm_peak = llm.useful_achieved_flops_per_s / peak
    return FlopsSummary(
        basis="counted_flops: torch's FLOP formulas (FlopCounterMode's) on the calibration batch; "
        "analytic_flops_estimate: formula on the same batch; timed batches: formula on each batch's shapes; "
        "achieved = total FLOPs / total seconds",
        stages=stages,
        llm=llm,
        likelihood_prompt_sharing=prompt_sharing(arch, calibration) if scenario.scoring.mode == "likelihood" else None,
    )


def utilisation(
    *,
    achieved: float | None,
    flops_per_batch_mean: float,
    seconds_per_batch_mean: float,
    gemm_peak: GemmPeakInfo,
    device: Device,
    device_name: str,
    dtype: str,
) -> LlmFlops:
    """Achieved LLM FLOP/s against this machine's measured GEMM peak and, on a GPU, the datasheet peak."""
    peak = gemm_peak.flops_per_s
    figures = LlmFlops(
        flops_per_batch_mean=flops_per_batch_mean,
        seconds_per_batch_mean=seconds_per_batch_mean,
        achieved_flops_per_s=achieved,
        fraction_of_measured_gemm_peak=achieved / peak if achieved else None,
        measured_gemm_peak_flops_per_s=peak,
        achieved_basis="analytic FLOPs of the timed batches (an estimate, equal to torch's FLOP count on "
        "the calibration batch) / their measured LLM time",
    )
    if achieved and achieved > peak:
        figures.note = (
            "achieved exceeds the measured GEMM peak: the peak was probably measured while the machine was busy; "
            "a quiet run raises the cached best"
        )
    if device.is_cuda:
        datasheet = lookup_device_peak(device_name, dtype)
        if datasheet is not None:
            figures.mfu = achieved / datasheet.flops_per_s if achieved else None
            figures.datasheet_peak_flops_per_s = datasheet.flops_per_s
            figures.datasheet_source = datasheet.source
    else:
        # A CPU has no datasheet peak here: MFU is taken against the measured GEMM peak.
        figures.mfu = figures.fraction_of_measured_gemm_peak
        figures.mfu_basis = "measured GEMM peak of this machine"
    return figures


def prompt_sharing(arch: Architecture, calibration: BatchRecord) -> PromptSharing:
    """Likelihood mode: FLOPs with the prompt's KV cache shared across candidates vs recomputing the prompt
    for every candidate (both analytic, from the calibration batch's shapes)."""
    prefill, candidates = calibration.forwards[0], calibration.forwards[1]
    k = candidates.batch // prefill.sequences
    titles = candidates.new_tokens
    if prefill.segments:  # recomputed as it is shared: every prompt + title packed, nothing padded but the title
        rows = tuple(length + titles for length in prefill.segments for _ in range(k))
        recompute = ForwardShape(batch=1, new_tokens=sum(rows), context=sum(rows), logits=titles + 1, segments=rows)
    else:
        recompute = ForwardShape(
            batch=candidates.batch, new_tokens=candidates.context, context=candidates.context, logits=titles + 1
        )
    shared = total_forward_flops(arch, calibration.forwards)
    recomputed = total_forward_flops(arch, [recompute])
    return PromptSharing(
        candidates_per_request=k,
        shared_prompt_flops_estimate=shared,
        recompute_prompt_flops_estimate=recomputed,
        saving_factor=recomputed / shared,
    )


def work_done(records: list[BatchRecord]) -> Work:
    prompt_tokens = [t for r in records for t in r.prompt_tokens]
    padded = [f.batch * f.new_tokens for r in records for f in r.forwards[:1]]
    return Work(
        requests=sum(r.users for r in records),
        prompt_tokens_mean=sum(prompt_tokens) / len(prompt_tokens),
        prompt_tokens_max=max(prompt_tokens),
        prompt_tokens_padded_per_batch_mean=sum(padded) / len(padded),
        prompt_padding_fraction=1 - sum(prompt_tokens) / sum(padded) if sum(padded) else None,
        generated_tokens=sum(r.generated_tokens for r in records),
    )


def quality(
    records: list[BatchRecord], scenario: Scenario, weights: str, *, evaluation: QualityEvaluation | None = None
) -> Quality:
    requests = sum(r.users for r in records)
    recall = sum(r.held_out_in_candidates for r in records) / requests
    n, k = scenario.workload.top_n, scenario.workload.candidates
    chance = weights == "random"
    return Quality(
        top_n=n,
        requests=requests,
        hit_rate=sum(r.hits for r in records) / requests,
        ndcg=sum(r.ndcg_sum for r in records) / requests,
        candidate_recall=recall,
        chance_hit_rate=recall * chance_hit_rate(n, k),
        chance_ndcg=recall * chance_ndcg(n, k),
        chance_level=chance,
        evaluation=evaluation,
        note=(
            "the LLM has random weights: hit rate and NDCG are chance-level by construction and say nothing "
            "about model quality (candidate_recall reflects the retrieval stage only)"
            if chance
            else "hit_rate and ndcg: the timed batches, on retrieved candidates (the held-out item is often not "
            "among them); `evaluation`: the fixed evaluation set, with intervals"
        ),
    )


def statistical_warnings(latency: LatencySummary, quality_: Quality, *, load_test: bool = False) -> list[ResultWarning]:
    """What a reader must know before trusting the figures: chance-level quality, a p99 from few batches."""
    found = []
    if quality_.chance_level:
        found.append(
            ResultWarning(
                kind=WarningKind.CHANCE_LEVEL,
                message="random weights: hit rate and NDCG are chance-level by construction",
            )
        )
    evaluation = quality_.evaluation
    if evaluation is not None and not quality_.chance_level and not evaluation.above_chance:
        found.append(
            ResultWarning(
                kind=WarningKind.CHANCE_LEVEL,
                message=f"quality not above chance: NDCG@{evaluation.top_n} {evaluation.ndcg_mean:.3f} vs chance "
                f"{evaluation.chance_ndcg:.3f} over {evaluation.users} users (p = {evaluation.p_value_ndcg:.2g})",
            )
        )
    n = latency.stages[Stage.END_TO_END].n
    if n < MIN_SAMPLES_FOR_P99 and not load_test:  # a load test's tail is its queries' p99, from LoadGen
        found.append(
            ResultWarning(
                kind=WarningKind.WEAK_STATISTICS,
                message=f"p99 from {n} batches is near the maximum: a load test, or repetitions.min_iterations >= "
                f"{MIN_SAMPLES_FOR_P99}, gives a tail to plan on",
            )
        )
    return found


def energy_section(energy: EnergyResult, records: list[BatchRecord], scenario: Scenario, *, window: str) -> Energy:
    """The tracker's raw result over the measured window, plus joules per request and per recommendation."""
    requests = sum(r.users for r in records)
    joules = energy.joules
    grid = scenario.grid_intensity_gco2_per_kwh
    return Energy(
        method=EnergyMethod(energy.method),
        estimated=energy.estimated,
        joules=joules,
        duration_s=energy.duration_s,
        average_watts=energy.average_watts,
        readings=energy.readings,
        notes=energy.notes,
        unit=energy.unit,
        joules_per_request=joules / requests if joules is not None else None,
        joules_per_recommendation=joules / (requests * scenario.workload.top_n) if joules is not None else None,
        co2_grams_per_request=co2_grams(joules, grid) / requests if joules is not None and grid is not None else None,
        window=window,
    )
