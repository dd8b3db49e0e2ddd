"""The result of one scenario point: the typed, versioned contract between measuring and everything downstream.

A result holds raw samples with their units (latency per stage in seconds, RSS in bytes, energy readings), the
machine and software they came from, and the figures derived from them once, at the end of the run
(`summary`). Every reader (show, report, plan, cost, compare, the DataFrame, baselines) reads this model;
files of older versions are migrated on load (bench.results.migrations). The JSON Schema generated from it is
results/result.schema.json.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bench.core.device import Device
from bench.core.dtypes import DtypeName
from bench.core.kinds import EnergyMethod, LoadVerdict, WarningKind
from bench.core.names import SAFE_NAME_PATTERN
from bench.core.stages import Stage
from bench.hardware.fingerprint import Fingerprint
from bench.models.analytic import ForwardShape
from bench.models.architecture import Architecture
from bench.scenarios.spec import Load, Scenario

SCHEMA_VERSION = 2


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------------------------------- provenance


class PointInfo(Section):
    index: int = Field(ge=0, description="position in the sweep grid; 0 without a sweep")
    key: str = Field(description="`default`, or the swept values, e.g. batch_size=4,max_prompt_tokens=256")
    values: dict[str, Any] = Field(description="swept field path -> this point's value")
    spec_hash: str = Field(description="hash of the resolved scenario: equal hashes measure the same thing")


class CudaDeviceInfo(Section):
    index: int
    name: str
    total_memory_bytes: int
    compute_capability: str


class CudaInfo(Section):
    available: bool
    device_count: int
    devices: list[CudaDeviceInfo]
    torch_cuda_version: str | None
    driver_version: str | None


class FingerprintInfo(Section):
    """What makes two machines the same for timing purposes (bench.hardware.fingerprint)."""

    cpu_model: str
    isa: str = Field(description="ISA level: amx, avx512-bf16, avx512, avx2, sve, neon or baseline")
    logical_cores: int
    memory_gib: int
    gpus: tuple[str, ...]
    torch: str
    digest: str = Field(description="8 hex digits of the hardware part (torch excluded): part of the machine key")

    def as_fingerprint(self) -> Fingerprint:
        return Fingerprint(**self.model_dump(exclude={"digest"}))


class Environment(Section):
    """The machine and software stack the point ran on (captured in the process that measured it)."""

    hostname: str
    os: str
    os_release: str
    platform: str
    machine: str = Field(description="CPU architecture, e.g. x86_64")
    python_version: str
    python_implementation: str
    cpu_model: str
    cpu_flags: dict[str, bool] = Field(description="ISA flags that decide which kernels and dtypes are fast")
    cpu_has_native_bf16: bool
    cpu_physical_cores: int | None
    cpu_logical_cores: int | None
    cpu_usable_cores: int | None = Field(
        None,
        description="logical cores this process could use: its affinity mask capped by a cgroup CPU quota (a "
        "container's share of the host); the fingerprint counts these. None: older results, which counted all",
    )
    ram_total_bytes: int
    torch_version: str
    torch_threads: int
    torch_interop_threads: int
    torch_cpu_capability: str | None = Field(description="what ATen dispatches to, e.g. AVX2, AVX512")
    transformers_version: str | None
    numpy_version: str | None
    recbench_version: str
    git_commit: str | None
    git_dirty: bool | None
    cuda: CudaInfo
    fingerprint: FingerprintInfo
    machine_slug: str
    allocator: str | None = Field(
        None, description="malloc settings applied while measuring (bench.hardware.allocator); None: the defaults"
    )
    gc_frozen_objects: int | None = Field(
        None,
        description="objects moved out of Python's garbage collector's view before the first point (gc.freeze: "
        "the imported libraries), so collections during timed batches walk only what points create; None: older "
        "results, or nothing frozen",
    )


class PresetInfo(Section):
    description: str | None = None
    source: str
    params: int | None = Field(None, description="published parameter total, embeddings included")
    packaged: dict[str, str] | None = Field(None, description="where the preset's pretrained weights ship, if any")


class ModelInfo(Section):
    label: str
    weights: Literal["random", "loaded"]
    architecture: Architecture
    params_total: int = Field(description="parameters of the model as built")
    params_analytic: int = Field(description="estimate: parameters from the architecture's formula")
    dtype: DtypeName
    dtype_bytes: int
    preset: PresetInfo | None = None
    weights_source: str | None = Field(
        None, description="where pretrained weights came from (a GGUF file and its digest, a checkpoint folder)"
    )


class WorkloadInfo(Section):
    source: str = Field(description="synthetic, movielens or amazon")
    users: int
    items: int
    stats: dict[str, Any] = Field(description="history length statistics and generator settings")


class Setup(Section):
    unit: Literal["s"] = "s"
    seconds: dict[str, float] = Field(description="one-off work (single samples, not statistics), seconds")
    note: str = "one-off work, single samples"


# -------------------------------------------------------------------------------------------- raw data


class Latency(Section):
    unit: Literal["s"] = "s"
    method: str = Field(description="perf_counter (CPU) or cuda_event (CUDA events on the device's stream)")
    sync_each_stage: bool = Field(False, description="CUDA: each stage waited for its GPU work")
    window: str = Field(description="which batches the samples cover")
    warmup_iterations: int = Field(ge=0, description="batches run first and discarded")
    iterations: int = Field(ge=0, description="batches measured")
    samples: dict[Stage, list[float]] = Field(description="stage -> one duration per batch, seconds, in order")

    @model_validator(mode="after")
    def _samples_are_durations(self) -> Latency:
        """Every statistic downstream is computed from these samples: a file whose batches are missing or whose
        durations are not durations is damaged, not a result."""
        batches = self.samples.get(Stage.END_TO_END, [])
        if not batches or len(batches) != self.iterations:
            raise ValueError(f"samples.end_to_end: {len(batches)} sample(s) for {self.iterations} iteration(s)")
        for stage, durations in self.samples.items():
            if not all(math.isfinite(d) and d >= 0 for d in durations):
                raise ValueError(f"samples.{stage.value}: a duration that is negative, NaN or infinite")
        return self


class MemoryWindow(Section):
    """One tracked window: process RSS sampled by a thread, plus CUDA allocator peaks (bytes)."""

    rss_baseline: int = Field(description="RSS when the window opened, bytes")
    rss_peak: int = Field(description="highest RSS sample in the window, bytes")
    rss_samples: list[int] = Field(description="RSS samples (max per bucket when downsampled), bytes")
    sample_interval_s: float
    requested_interval_s: float
    n_raw_samples: int
    duration_s: float
    ru_maxrss_bytes: int = Field(description="getrusage high-water mark of the whole process, bytes")
    anon_baseline: int | None = Field(
        None, description="RSS less file-backed and shared pages when the window opened, bytes (Linux)"
    )
    anon_peak: int | None = Field(
        None,
        description="highest RSS less file-backed and shared pages, bytes (Linux): anonymous memory, which the "
        "page cache does not move; it leaves out libraries and also weights memory-mapped from a checkpoint",
    )
    cuda_peak_allocated: int | None = Field(description="torch.cuda.max_memory_allocated over the window, bytes")
    cuda_peak_reserved: int | None = Field(description="torch.cuda.max_memory_reserved over the window, bytes")
    unit: Literal["bytes"] = "bytes"


class MemoryEstimate(Section):
    """Estimate from the architecture and the shapes that ran (not a measurement), bytes."""

    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    total_bytes: int


class Memory(Section):
    unit: Literal["bytes"] = "bytes"
    measured: MemoryWindow = Field(description="the serving window (warm-up and measured batches)")
    measured_window: str
    setup_measured: MemoryWindow | None = Field(
        description="loading data, building the model, tokenizing (None: not recorded by an early release)"
    )
    analytic_estimate: MemoryEstimate
    analytic_basis: str


class CountedFlops(Section):
    method: str
    unit: Literal["FLOP"] = "FLOP"
    per_batch: dict[Stage, int] = Field(description="FLOPs of one calibration batch per loop stage")
    ops_per_batch: dict[Stage, int] | None = Field(
        None,
        description="ATen operator calls (views excluded) of the calibration batch per loop stage: each is at "
        "least one kernel launch on a GPU in eager mode (None: not recorded by an older release)",
    )


class CalibrationBatch(Section):
    """The shapes of the FLOP-counted batch (run once, never timed)."""

    users: int
    prompt_tokens: list[int] = Field(description="unpadded prompt length of each request")
    forwards: list[ForwardShape]
    interest_shape: tuple[int, int, int] = Field(description="(batch, history, embedding dim)")
    retrieval_shape: tuple[int, int, int] = Field(description="(batch, items, embedding dim)")


class Flops(Section):
    counted: CountedFlops
    calibration_batch: CalibrationBatch


class Energy(Section):
    method: EnergyMethod
    estimated: bool = Field(description="true for a modelled figure (TDP x utilisation), not a meter reading")
    joules: float | None
    duration_s: float
    average_watts: float | None
    readings: list[dict[str, Any]] = Field(description="raw readings in their native units (mJ, mW, µJ)")
    notes: list[str]
    unit: Literal["J"] = "J"
    joules_per_request: float | None = None
    joules_per_recommendation: float | None = None
    co2_grams_per_request: float | None = None
    window: str


class HardwareTier(Section):
    name: str = Field(description="the catalogue tier this machine was taken to be")
    tdp_watts: float = Field(description="its TDP, which drives modelled energy where no counter exists")


class GemmPeakInfo(Section):
    flops_per_s: float = Field(description="best of the timed square GEMMs, FLOP/s")
    samples: list[float] = Field(description="FLOP/s of each timed GEMM")
    n: int = Field(description="matrix side")
    dtype: str
    device: str
    threads: int
    float32_matmul_precision: str
    torch_version: str
    method: str
    unit: Literal["FLOP/s"] = "FLOP/s"
    # Results written before 2026-11-29 (evening) have neither field.
    measured_now: bool | None = Field(
        None,
        description="True: the process that ran this point measured the GEMM peak (once per process: a sweep's later "
        "points reuse it) and kept the better of that and the best cached for this machine; False: it took the "
        "cached best, which a measurement had been compared with less than a day before, without measuring",
    )
    checked_at: datetime | None = Field(
        None, description="UTC time of the latest measurement compared with this figure (None: not recorded)"
    )


class HostProbeInfo(Section):
    """Written by recbench from 2026-11-29 to 2026-11-29 only: a piece of host-like work timed before and after the
    timed batches, against the machine's best. Projections no longer use it (it tracked the host stages less well
    than their own medians do once freed memory is kept: bench.hardware.allocator); kept readable."""

    unit: str = Field(description="the fixed piece of host-like work timed")
    method: str
    seconds_per_unit: float = Field(description="this run: mean of the probes before and after the timed batches, s")
    samples_before: list[float] = Field(description="block means of the probe before the timed batches, s")
    samples_after: list[float] = Field(description="block means of the probe after the timed batches, s")
    best_seconds_per_unit: float = Field(description="the fastest unit time this machine has shown, s")


class Peak(Section):
    gemm: GemmPeakInfo
    host_probe: HostProbeInfo | None = Field(None, description="older results only: see HostProbeInfo")


class Work(Section):
    requests: int
    prompt_tokens_mean: float = Field(description="unpadded prompt tokens per request")
    prompt_tokens_max: int
    prompt_tokens_padded_per_batch_mean: float = Field(
        description="executed prompt positions per batch, padding included"
    )
    prompt_padding_fraction: float | None = Field(
        None, description="share of the executed prompt positions that were padding (None: an older result)"
    )
    generated_tokens: int


class Quality(Section):
    """Ranking quality of the measured batches; with random weights, chance level by construction."""

    top_n: int
    requests: int
    hit_rate: float = Field(description="fraction of requests whose held-out item is in the top_n")
    ndcg: float = Field(description="mean NDCG@top_n")
    candidate_recall: float = Field(description="fraction of requests whose held-out item was retrieved")
    chance_hit_rate: float
    chance_ndcg: float
    chance_level: bool
    note: str | None = None
    evaluation: QualityEvaluation | None = Field(
        None, description="quality on a fixed evaluation set of users (scenario `evaluation`), with intervals"
    )


class Interval(Section):
    low: float = Field(description="lower end of the interval")
    high: float = Field(description="upper end of the interval")
    confidence: float = Field(0.95, description="coverage, e.g. 0.95")
    method: str = Field("bootstrap percentile interval over users", description="how the interval was computed")


class QualityEvaluation(Section):
    """Ranking quality on a fixed set of users, apart from the timed batches (bench.loop.evaluation): raw per-user
    outcomes, and the figures derived from them with their uncertainty."""

    protocol: str = Field(description="how each user's candidates are chosen")
    users: int = Field(description="users evaluated")
    candidates: int = Field(description="candidates each user's held-out item is ranked among")
    top_n: int = Field(description="k of HR@k and NDCG@k")
    user_ids: list[str] = Field(description="evaluated users, in order: two results pair up user by user")
    hits: list[int] = Field(description="per user: 1 where the held-out item is in the top_n")
    ndcg: list[float] = Field(description="per user: NDCG@top_n (one relevant item, so IDCG = 1)")
    hit_rate: float = Field(description="HR@top_n: mean of hits")
    hit_rate_ci: Interval = Field(description="95% Wilson score interval of the hit rate")
    ndcg_mean: float = Field(description="NDCG@top_n: mean of ndcg")
    ndcg_ci: Interval = Field(description="95% bootstrap percentile interval of the mean NDCG over users")
    chance_hit_rate: float = Field(description="top_n / candidates: a uniformly random ranking")
    chance_ndcg: float = Field(description="expected NDCG@top_n of a uniformly random ranking")
    p_value_ndcg: float = Field(
        description="one-sided, against a uniformly random ranking: the null distribution of the mean simulated "
        "(up to 1,000 users), else a z-test with its exact mean and variance"
    )
    p_value_hit_rate: float = Field(description="one-sided exact binomial test against chance_hit_rate")
    above_chance: bool = Field(description="p_value_ndcg < 0.05")
    seconds: float = Field(description="wall time of the evaluation, s (one sample, not timed per stage)")

    @model_validator(mode="after")
    def _one_outcome_per_user(self) -> QualityEvaluation:
        if not len(self.user_ids) == len(self.hits) == len(self.ndcg) == self.users:
            raise ValueError(
                f"evaluation: {self.users} users but {len(self.user_ids)} ids, {len(self.hits)} hits and "
                f"{len(self.ndcg)} NDCG values"
            )
        return self


class LoadCalibration(Section):
    max_batch_size_batch_s: float = Field(description="median time of an isolated batch of max_batch_size, s")
    isolated_batch_throughput_qps: float
    single_query_s: float | None = None


class LoadSettings(Load):
    """The scenario's load section as run, plus what LoadGen and the calibration decided."""

    performance_sample_count: int | None = None
    offline_expected_qps: float | None = None
    calibration: LoadCalibration


class LoadProbe(Section):
    qps: float | None
    verdict: LoadVerdict
    loadgen_validity: str
    p99_s: float | None
    dropped: int
    served: int
    completed_samples_per_s: float | None
    log_dir: str


class LoadSection(Section):
    """A LoadGen load test: the reported run (the highest VALID probe of a peak search, or the one run)."""

    mode: Literal["offline", "server", "single_stream"]
    settings: LoadSettings
    target_qps: float | None
    verdict: LoadVerdict = Field(description="VALID only if LoadGen says so, nothing was dropped, no timeout")
    loadgen_validity: str
    invalid_reason: str | None = None
    perf_constraints_met: bool | None = None
    min_duration_met: bool | None = None
    min_queries_met: bool | None = None
    early_stopping_met: bool | None = None
    early_stopping_result: str | None = None
    completed_samples_per_s: float | None = None
    scheduled_samples_per_s: float | None = None
    served_requests_per_s: float | None = None
    latency_s: dict[str, float] = Field(
        description="served queries' latency percentiles, s, arrival to completion (queueing included, dropped "
        "queries never counted)"
    )
    query_latency_samples_s: list[float] = Field(
        default_factory=list, description="each served query's latency, s (raw samples of latency_s)"
    )
    loadgen_latency_s: dict[str, float] = Field(
        default_factory=dict,
        description="LoadGen's own percentiles, s: a dropped query completes at once and counts as fast there",
    )
    time_to_first_token_s: dict[str, float] | None = None
    time_per_output_token_s: dict[str, float] | None = None
    completed_tokens_per_s: float | None = None
    queries: int
    served: int
    dropped: int
    overlatency_queries: int | None = None
    batches: int
    batch_size_mean: float | None
    timed_out: bool
    batcher_error: str | None
    wall_s: float
    loadgen_errors: list[str]
    loadgen_warnings: list[str]
    log_dir: str = Field(description="LoadGen's logs, relative to the results/<machine>/ folder")
    logs: list[str]
    energy_joules_per_request: float | None
    energy_method: EnergyMethod | None
    peak_qps: float | None = None
    peak_bracket: tuple[float, float] | None = None
    probes: list[LoadProbe] | None = None
    reported_probe_qps: float | None = None


class ResultWarning(Section):
    kind: WarningKind
    message: str


# --------------------------------------------------------------------------------------------- summary


class LatencyStats(Section):
    """bench.core.stats.summarize of one stage's samples, seconds."""

    n: int
    mean: float
    stdev: float
    min: float
    max: float
    p50: float
    p90: float
    p99: float
    cv: float | None = Field(description="stdev / mean; None where the mean is 0")


class LatencySummary(Section):
    unit: Literal["s"] = "s"
    stages: dict[Stage, LatencyStats]


class Throughput(Section):
    basis: str = Field(description="how requests/s was obtained (isolated batches or a load test)")
    requests_per_s: float = Field(description="requests/s (users served)")
    recommendations_per_s: float = Field(description="recommended items/s (top_n per request)")
    candidates_scored_per_s: float = Field(description="candidates scored by the LLM/s")
    prompt_tokens_per_s: float = Field(description="prompt tokens/s (unpadded)")
    time_to_first_token_s: float | None = Field(
        None, description="s (median LLM prefill, generate scoring; the stages before scoring are not included)"
    )
    time_per_output_token_s: float | None = Field(None, description="s (median decode step, generate scoring)")
    decode_tokens_per_s: float | None = Field(
        None, description="generated tokens/s (batch / median time per output token, generate scoring)"
    )


class StageFlops(Section):
    counted_flops: int = Field(description="torch's FLOP formulas (FlopCounterMode's) on the calibration batch")
    analytic_flops_estimate: int = Field(description="estimate: formula on the calibration batch's shapes")
    timed_batches_flops_mean: float = Field(description="estimate: formula on each measured batch's shapes")
    timed_batches_bytes_moved_estimate_mean: float | None = Field(
        description="estimate; None where an early release did not record it"
    )
    achieved_flops_per_s: float | None


class LlmFlops(Section):
    flops_per_batch_mean: float = Field(description="executed: the padded batches' FLOPs (estimate)")
    seconds_per_batch_mean: float
    achieved_flops_per_s: float | None = Field(description="executed FLOPs / LLM seconds, padding included")
    fraction_of_measured_gemm_peak: float | None
    useful_flops_per_batch_mean: float | None = Field(
        None, description="the same requests' FLOPs without padding (estimate; None: an older result)"
    )
    padding_waste: float | None = Field(None, description="share of the executed FLOPs spent on padding")
    useful_achieved_flops_per_s: float | None = Field(None, description="useful FLOPs / LLM seconds")
    useful_fraction_of_measured_gemm_peak: float | None = None
    measured_gemm_peak_flops_per_s: float
    achieved_basis: str
    mfu: float | None = None
    mfu_basis: str | None = None
    datasheet_peak_flops_per_s: float | None = None
    datasheet_source: str | None = None
    note: str | None = None


class PromptSharing(Section):
    """Likelihood scoring: FLOPs with the prompt's KV cache shared vs recomputed per candidate (estimates)."""

    candidates_per_request: int
    shared_prompt_flops_estimate: int
    recompute_prompt_flops_estimate: int
    saving_factor: float


class FlopsSummary(Section):
    unit: str = "FLOP per batch; FLOP/s"
    basis: str
    stages: dict[Stage, StageFlops]
    llm: LlmFlops
    likelihood_prompt_sharing: PromptSharing | None = None


class Summary(Section):
    """Figures derived from the raw data above, once, when the result was assembled."""

    latency: LatencySummary
    throughput: Throughput
    flops: FlopsSummary


# ---------------------------------------------------------------------------------------------- result


class Execution(Section):
    """Where and how a point ran when an executor other than the local one ran it."""

    executor: Literal["local", "ray"]
    attempts: int = Field(ge=1, description="1, or more when a worker or node died and the point was run again")
    max_attempts: int = Field(ge=1)
    node: str | None = Field(None, description="the executor's name for the machine that ran the point")


class Result(Section):
    schema_version: Literal[2] = SCHEMA_VERSION
    created_at: datetime = Field(description="UTC time the point started")
    scenario: Scenario = Field(description="the resolved scenario of this point (no sweep)")
    scenario_file: str
    point: PointInfo
    machine: str = Field(pattern=SAFE_NAME_PATTERN, description="results folder name: hardware slug")
    environment: Environment
    model: ModelInfo
    workload: WorkloadInfo
    setup: Setup
    latency: Latency
    memory: Memory
    flops: Flops
    energy: Energy
    hardware_tier: HardwareTier | None
    peak: Peak
    work: Work
    quality: Quality
    load: LoadSection | None = None
    execution: Execution | None = Field(None, description="how the point was run (None: in the recbench process)")
    warnings: list[ResultWarning]
    wall_time_s: float = Field(description="seconds the point took, set-up included")
    summary: Summary

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """A time without a zone (written by hand, or by another tool) is taken as UTC, so results compare."""
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)

    @model_validator(mode="after")
    def _summary_matches_samples(self) -> Result:
        """The latency summary is derived from the samples when the result is written; one that disagrees with
        them (an edited file) would make `show` and `plan` tell a different story from `compare` and `check`,
        which recompute from the samples."""
        for stage, stats in self.summary.latency.stages.items():
            samples = self.latency.samples.get(stage)
            if not samples:
                raise ValueError(f"summary.latency.stages.{stage.value}: no samples to summarise")
            # statistics' inclusive quantiles interpolate linearly, as bench.core.stats.summarize (numpy) did when
            # writing; not summarize itself: numpy would add 0.2 s to every reading command (show, compare...).
            cuts = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else [samples[0]] * 99
            expected = {"n": len(samples), "min": min(samples), "max": max(samples), "p50": cuts[49], "p99": cuts[98]}
            for name, value in expected.items():
                if not math.isclose(getattr(stats, name), value, rel_tol=1e-9, abs_tol=1e-12):
                    raise ValueError(
                        f"summary.latency.stages.{stage.value}.{name}: {getattr(stats, name)!r} does not match its "
                        f"samples ({value!r})"
                    )
        return self

    @property
    def label(self) -> str:
        return f"{self.scenario.name} [{self.point.key}]"

    @property
    def device(self) -> Device:
        return Device.parse(self.scenario.device)

    @property
    def device_name(self) -> str:
        return device_name(self.environment, self.device)

    def stage_stats(self, stage: Stage) -> LatencyStats | None:
        return self.summary.latency.stages.get(stage)

    @property
    def end_to_end(self) -> LatencyStats:
        return self.summary.latency.stages[Stage.END_TO_END]

    @property
    def requests_per_batch(self) -> float:
        """Requests a batch carried on average: batch_size, except in a load test, whose batches are formed as
        queries arrive (its mean served batch)."""
        if self.load is not None and self.load.batch_size_mean:
            return self.load.batch_size_mean
        return float(self.scenario.batch_size)

    def warnings_of(self, kind: WarningKind) -> list[str]:
        return [w.message for w in self.warnings if w.kind == kind]


def device_name(environment: Environment, device: Device) -> str:
    """The CPU model, or the GPU's name for a CUDA device (what a catalogue tier is matched against)."""
    if device.is_cuda:
        gpus = environment.cuda.devices
        return gpus[device.cuda_index].name if device.cuda_index < len(gpus) else str(device)
    return environment.cpu_model
