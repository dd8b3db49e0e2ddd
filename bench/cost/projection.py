"""What a measured operating point would take on another hardware tier: a projection of the measured work,
labelled as an estimate everywhere it appears.

A batch is split into what runs on the host and what the LLM does:
- host work: the loop's stages other than scoring (preprocess, interest, candidates, rank_feedback) and the part
  of scoring outside the LLM's forwards (building prompts, padding, reading the scores), each carried over by its
  MEDIAN per batch (with bucketed batching, whose batches differ in length by design, the median over windows
  of the window's mean batch: bench.core.stats.typical_batch), as measured (the target's host CPU is taken to
  be as fast as the benchmark machine);
- LLM work: per forward and per kind of operator (the layers' matmuls, attention over the KV cache, the LM head),
  max(FLOPs / (peak x compute efficiency), bytes / (bandwidth x memory efficiency)) (the roofline model, Williams,
  Waterman & Patterson, CACM 2009), summed: they run one after another, so a compute-bound matmul does not hide
  a memory-bound attention read, nor a prefill a decode step (the per-operator roofline of LLM-Viewer, Yuan et
  al. 2024, arXiv:2402.16363). On a GPU never less than the time to launch its kernels: forwards x operators per
  forward x the engine's per-launch overhead (bench/hardware/engines.yaml).

FLOPs and bytes per batch are the analytic figures for the batches that were timed (checked against
FlopCounterMode in the result), split into forwards and kinds in the proportions of the result's calibration batch.
Efficiencies come from the tier catalogue, or are calibrated from results measured on a tier (bench.cost.model:
the median over every point measured there, so the order results are given in changes nothing). The projected
p99 is the projected p50 times the measured p99/p50 ratio, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.core.dtypes import dtype_bytes
from bench.core.kinds import Basis, EnergyMethod, LoadVerdict
from bench.core.stages import LOOP_STAGES, Stage
from bench.core.stats import MIN_SAMPLES_FOR_P99, typical_batch
from bench.hardware.engines import DEFAULT_ENGINE, Engine, load_engines
from bench.hardware.fingerprint import Fingerprint
from bench.hardware.tiers import Tier, peak_flops
from bench.models.analytic import PartWork, forward_parts
from bench.results.model import LoadSection, MemoryEstimate, QualityEvaluation, Result
from bench.results.reader import StoredResult
from bench.scenarios.loader import point_key
from bench.scenarios.spec import NO_LEVER, Scenario

HOST_STAGES = tuple(stage for stage in LOOP_STAGES if stage is not Stage.SCORING)
# Operators outside the decoder layers in one forward (embedding, final norm, LM head, rotary set-up): counted
# 9 in a forward of a 4-layer Llama here; used with an engine's per-layer count where a result has no count.
OPS_OUTSIDE_LAYERS = 9


@dataclass(frozen=True, kw_only=True)
class LlmWork:
    """The LLM's share of one batch."""

    flops: float  # per batch, mean over the timed batches (analytic)
    bytes_moved: float | None  # per batch, mean (estimate); None where an older result did not record it
    measured_s: float  # median over batches of the LLM's forwards' time (the llm_* stages)
    host_s: float  # median over batches of scoring's time outside the forwards (prompts, padding, scores)
    forwards: int  # model forwards per batch
    ops_per_forward: float | None  # counted operator calls per forward (None: an older result)
    parts: tuple[PartWork, ...] = ()  # flops and bytes_moved by forward and kind; () takes them as one part

    def roofline_parts(self, byte_scale: float = 1.0) -> list[PartWork]:
        """The work by forward and kind of operator, its bytes scaled to another dtype's width."""
        parts = self.parts or (PartWork("all", self.flops, self.bytes_moved),)
        return [
            PartWork(p.name, p.flops, p.bytes_moved * byte_scale if p.bytes_moved is not None else None) for p in parts
        ]


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """One result reduced to what projection and costing need."""

    path: str
    scenario: str
    point: str
    spec_hash: str
    model: str
    layers: int
    params: int
    batch_size: int
    max_prompt_tokens: int
    prompt_tokens_mean: float
    top_n: int
    dtype: str
    device: str
    device_name: str  # CPU model or GPU name, for matching a catalogue tier
    fingerprint: Fingerprint
    host_stages_s: dict[Stage, float]  # median per batch of each host stage
    llm: LlmWork
    batch_p50_s: float
    batch_p99_s: float
    batches: int  # how many batches the percentiles come from
    memory_need: MemoryEstimate  # analytic estimate: weights, KV cache, activations
    gemm_peak_flops_per_s: float  # the benchmark machine's measured GEMM peak in its dtype
    energy_j_per_batch: float | None
    energy_method: EnergyMethod
    hardware_tier: str | None  # the catalogue tier recorded at run time, if any
    workload: str  # the point's sweep values other than batch_size: points that differ only in batch size share it
    sweep_values: Mapping[str, str]  # the point's sweep values, as text
    machine: str
    created_at: str
    commit: str | None
    warnings: tuple[str, ...] = ()  # "kind: message" from the result (busy machine, weak statistics...)
    # Requests a batch carried on average: batch_size, except in a load test, whose batches are formed as queries
    # arrive (single stream: one each; server: up to batch_size).
    requests_per_batch: float | None = None
    load_mode: str | None = None  # the LoadGen scenario the batches ran under, where they did
    load_sustained_qps: float | None = None  # server load test: highest VALID QPS (peak search or the target)
    load_p99_slo_ms: float | None = None  # the p99 bound that load test was judged against
    load_p99_s: float | None = None  # that load test's p99 (served queries, queueing included)
    optimize: str = NO_LEVER  # the scenario's `optimize` levers, as a label (Optimize.label)
    batching: str | None = None  # the batching lever pulled, where one is (Batching.label)
    cpu_only: str | None = None  # a lever pulled that runs on a CPU only (int8_dynamic, prepack): never on a GPU
    scoring_mode: str = "verbalizer"
    engine: str = "transformers"  # what ran the model (Scenario.engine): its operator calls set the launch floor
    evaluation: QualityEvaluation | None = None  # ranking quality on a fixed set of users, with intervals
    # The resolved scenario without its levers, name, description and sweep bookkeeping (canonical JSON): a lever
    # and its baseline share it.
    lever_key: str = ""

    @property
    def levers(self) -> str:
        """Every lever pulled, `optimize` then batching (`prepack+padding=packed`), or "baseline"."""
        pulled = [label for label in (self.optimize, self.batching) if label and label != NO_LEVER]
        return "+".join(pulled) or NO_LEVER

    @property
    def batching_setting(self) -> str:
        """The batching lever pulled, or `padding=longest` (the default), as the CSVs name it."""
        return self.batching or "padding=longest"

    @property
    def per_batch(self) -> float:
        """Requests per batch: what a batch's time is divided by for requests per second or energy per request."""
        return self.requests_per_batch if self.requests_per_batch is not None else float(self.batch_size)

    @property
    def batch_label(self) -> str:
        """The batch size as shown: a load test's batches vary, so their mean and the cap."""
        if self.load_mode is None:
            return str(self.batch_size)
        return f"{self.per_batch:.3g} (mean, up to {self.batch_size})"

    @property
    def host_s(self) -> float:
        """Every host-side second of a batch: the host stages and scoring's work outside the forwards."""
        return sum(self.host_stages_s.values()) + self.llm.host_s


def operating_point(stored: StoredResult) -> OperatingPoint:
    result = stored.result
    summary, scenario = result.summary, result.scenario
    latency = summary.latency.stages
    flops = summary.flops.stages
    scoring = flops[Stage.SCORING]
    fingerprint = result.environment.fingerprint.as_fingerprint()
    window = scenario.batching.typical_window  # medians per batch, or per bucketing window (core.stats)
    return OperatingPoint(
        path=str(stored.path),
        scenario=scenario.name,
        point=result.point.key,
        spec_hash=result.point.spec_hash,
        model=result.model.label,
        engine=result.scenario.engine,
        layers=result.model.architecture.num_layers,
        params=result.model.params_total,
        batch_size=scenario.batch_size,
        max_prompt_tokens=scenario.max_prompt_tokens,
        prompt_tokens_mean=result.work.prompt_tokens_mean,
        top_n=scenario.workload.top_n,
        dtype=result.model.dtype,
        device=scenario.device,
        device_name=result.device_name,
        fingerprint=fingerprint,
        host_stages_s={
            stage: typical_batch(result.latency.samples[stage], window)
            for stage in HOST_STAGES
            if stage in latency and result.latency.samples.get(stage)
        },
        llm=_llm_work(result, scoring.timed_batches_flops_mean, scoring.timed_batches_bytes_moved_estimate_mean),
        batch_p50_s=typical_batch(result.latency.samples[Stage.END_TO_END], window),
        batch_p99_s=result.end_to_end.p99,
        batches=result.end_to_end.n,
        memory_need=result.memory.analytic_estimate,
        gemm_peak_flops_per_s=result.peak.gemm.flops_per_s,
        energy_j_per_batch=_energy_per_batch(result),
        energy_method=result.energy.method,
        hardware_tier=result.hardware_tier.name if result.hardware_tier else None,
        workload=point_key({k: v for k, v in result.point.values.items() if k != "batch_size"}),
        sweep_values={k: str(v) for k, v in result.point.values.items()},
        machine=result.machine,
        created_at=result.created_at.isoformat(),
        commit=result.environment.git_commit,
        warnings=tuple(f"{w.kind}: {w.message}" for w in result.warnings),
        **_load_test_figures(result.load),
        requests_per_batch=result.requests_per_batch,
        load_mode=result.load.mode if result.load is not None else None,
        optimize=scenario.optimize.label,
        batching=scenario.batching.label,
        cpu_only=scenario.optimize.cpu_only,
        scoring_mode=scenario.scoring.mode,
        evaluation=result.quality.evaluation,
        lever_key=lever_key(scenario),
    )


# What a lever and its baseline may differ in: the levers themselves and bookkeeping that changes nothing measured.
LEVER_SECTIONS = ("optimize", "batching")  # the scenario sections whose settings are levers
NOT_PART_OF_A_LEVER_BASELINE = (*LEVER_SECTIONS, "name", "description", "sweep")


def lever_key(scenario: Scenario) -> str:
    """The resolved scenario without its levers (`optimize`, `batching`) and bookkeeping, as canonical JSON: equal
    for a lever and the baseline it is compared with."""
    spec = scenario.model_dump(mode="json")
    for name in NOT_PART_OF_A_LEVER_BASELINE:
        spec.pop(name, None)
    return json.dumps(spec, sort_keys=True)


def _llm_work(result: Result, flops: float, bytes_moved: float | None) -> LlmWork:
    """Per batch: the forwards' time (each llm_* stage's samples split into the batches they belong to) and the
    rest of scoring, each by its median over batches (or bucketing windows)."""
    samples = result.latency.samples
    window = result.scenario.batching.typical_window
    scoring = samples[Stage.SCORING]
    n = len(scoring)
    llm_per_batch = [0.0] * n
    for stage, values in samples.items():
        if stage.is_llm and values and len(values) % n == 0:
            per = len(values) // n  # generate: new_tokens - 1 decode steps per batch
            for i in range(n):
                llm_per_batch[i] += sum(values[i * per : (i + 1) * per])
    forwards = len(result.flops.calibration_batch.forwards)
    ops = result.flops.counted.ops_per_batch
    return LlmWork(
        flops=flops,
        bytes_moved=bytes_moved,
        measured_s=typical_batch(llm_per_batch, window),
        host_s=max(0.0, typical_batch([s - llm for s, llm in zip(scoring, llm_per_batch, strict=True)], window)),
        forwards=forwards,
        ops_per_forward=ops[Stage.SCORING] / forwards if ops and Stage.SCORING in ops else None,
        parts=_parts_per_batch(result, flops, bytes_moved),
    )


def _parts_per_batch(result: Result, flops: float, bytes_moved: float | None) -> tuple[PartWork, ...]:
    """The timed batches' mean FLOPs and bytes split by forward and kind of operator in the proportions of the
    calibration batch's forwards (their shapes are in the result; the timed batches' differ only in prompt
    lengths)."""
    calibration = forward_parts(
        result.model.architecture, result.flops.calibration_batch.forwards, dtype=result.model.dtype
    )
    total_flops = sum(p.flops for p in calibration)
    total_bytes = sum(p.bytes_moved or 0 for p in calibration)
    if total_flops <= 0 or total_bytes <= 0:
        return ()
    return tuple(
        PartWork(
            p.name,
            flops * p.flops / total_flops,
            bytes_moved * (p.bytes_moved or 0) / total_bytes if bytes_moved is not None else None,
        )
        for p in calibration
    )


def _energy_per_batch(result: Result) -> float | None:
    """Joules per batch of `batch_size` requests. A load test's window includes idle gaps between arrivals and
    batches of varying size, so its per-request figure is used instead of joules / batches."""
    if result.load is not None and result.load.energy_joules_per_request is not None:
        return result.load.energy_joules_per_request * result.requests_per_batch
    joules = result.energy.joules
    return joules / result.latency.iterations if joules is not None else None


def _load_test_figures(load: LoadSection | None) -> dict[str, float | None]:
    """What a server-mode LoadGen result says one machine sustains under its p99 bound."""
    if load is None or load.mode != "server":
        return {}
    sustained = load.peak_qps
    if sustained is None and load.verdict == LoadVerdict.VALID:
        sustained = load.target_qps
    return {
        "load_sustained_qps": sustained,
        "load_p99_slo_ms": load.settings.p99_slo_ms,
        "load_p99_s": load.latency_s.get("p99"),
    }


@dataclass(frozen=True)
class Efficiency:
    compute: float
    memory: float
    source: str  # "catalogue default", or which results calibrated it


@dataclass(kw_only=True)
class TierTiming:
    """A point's batch latency on a tier, measured or projected."""

    tier: str
    basis: Basis
    dtype: str
    fits: bool
    memory_need_bytes: int
    memory_capacity_bytes: float
    batch_p50_s: float | None = None
    batch_p99_s: float | None = None
    p99_basis: str = ""  # how the p99 was obtained (measured over n batches, or projected from the measured ratio)
    llm_bound: str | None = None  # "compute", "memory" or "launch" (projected), None when measured
    llm_s: float | None = None  # the LLM forwards' share of batch_p50_s (projected, or measured median)
    efficiency: Efficiency | None = None
    notes: list[str] = field(default_factory=list)


def target_dtype(point: OperatingPoint, tier: Tier) -> str:
    """Run on a GPU tier in bf16 (fp16 where it has no bf16 peak); on a CPU tier in the measured dtype."""
    if tier.kind == "cpu":
        return point.dtype
    return "bfloat16" if peak_flops(tier, "bfloat16") else "float16"


def memory_need(point: OperatingPoint, dtype: str) -> int:
    """The analytic estimate of weights + KV cache + activations, rescaled to the tier's dtype."""
    return int(point.memory_need.total_bytes * dtype_bytes(dtype) / dtype_bytes(point.dtype))


def default_efficiency(tier: Tier) -> Efficiency:
    return Efficiency(tier.compute_efficiency, tier.memory_efficiency, "catalogue default")


def ops_per_forward(point: OperatingPoint, engine: Engine) -> float:
    """The operators one forward launches: counted in the result when it has the count (eager mode, the engine
    recbench runs), else the engine's per-layer figure."""
    if point.llm.ops_per_forward is not None and engine is load_engines()[DEFAULT_ENGINE]:
        return point.llm.ops_per_forward
    return point.layers * engine.ops_per_layer + OPS_OUTSIDE_LAYERS


@dataclass(frozen=True)
class LlmTime:
    seconds: float
    bound: str  # "compute", "memory" or "launch"


def llm_time(
    *,
    parts: list[PartWork],
    peak: float,
    bandwidth: float,
    efficiency: Efficiency,
    launch_floor_s: float = 0.0,
) -> LlmTime:
    """The roofline time of the LLM's work, part by part and summed, never below the launch floor; and what
    bounds it (whichever of compute or memory takes more of the summed time, or the launch floor)."""
    by_bound = {"compute": 0.0, "memory": 0.0}
    for part in parts:
        compute = part.flops / (peak * efficiency.compute)
        # No bandwidth figure (a measured-only machine): the compute roofline alone.
        memory = (
            part.bytes_moved / (bandwidth * efficiency.memory) if part.bytes_moved is not None and bandwidth > 0 else 0
        )
        by_bound["compute" if compute >= memory else "memory"] += max(compute, memory)
    seconds = sum(by_bound.values())
    if launch_floor_s > seconds:
        return LlmTime(launch_floor_s, "launch")
    return LlmTime(seconds, max(by_bound, key=lambda k: by_bound[k]))


def projected_shell(point: OperatingPoint, tier: Tier, dtype: str) -> TierTiming:
    """A projected timing on `tier` with its memory fit and nothing timed yet."""
    return TierTiming(
        tier=tier.name,
        basis=Basis.PROJECTED,
        dtype=dtype,
        fits=True,
        memory_need_bytes=memory_need(point, dtype),
        memory_capacity_bytes=tier.memory_bytes,
    )


def project(
    point: OperatingPoint,
    tier: Tier,
    efficiency: Efficiency,
    *,
    launch_overhead_us: float | None = None,
    dtype: str | None = None,
) -> TierTiming:
    """The point's batch latency on `tier` (an estimate). `launch_overhead_us` replaces the engine's cited
    per-launch overhead where a GPU measurement gave one; `dtype` overrides the tier's usual dtype (the
    measured tier is projected in the dtype the point ran in, to compare like with like)."""
    dtype = dtype or target_dtype(point, tier)
    base = projected_shell(point, tier, dtype)
    base.efficiency = efficiency
    if base.memory_need_bytes > tier.memory_bytes:
        base.fits = False
        return base
    peak = peak_flops(tier, dtype)
    if not peak:
        base.notes.append(f"no {dtype} peak in the catalogue")
        return base
    byte_scale = dtype_bytes(dtype) / dtype_bytes(point.dtype)
    llm = llm_time(
        parts=point.llm.roofline_parts(byte_scale),
        peak=peak,
        bandwidth=tier.bandwidth_bytes_per_s,
        efficiency=efficiency,
        launch_floor_s=launch_floor_s(point, tier, launch_overhead_us),
    )
    base.batch_p50_s = point.host_s + llm.seconds
    base.llm_s = llm.seconds
    base.llm_bound = llm.bound
    # The measured spread (p99 / p50) is assumed to carry over to the tier.
    base.batch_p99_s = base.batch_p50_s * point.batch_p99_s / point.batch_p50_s
    base.p99_basis = f"projected p50 x measured p99/p50 ({point.batches} batches)"
    base.notes.append("host-side work (non-LLM stages, prompt building) keeps its measured median")
    if point.llm.bytes_moved is None:
        base.notes.append("bytes moved not recorded in the result: compute roofline only")
    return base


def launch_floor_s(point: OperatingPoint, tier: Tier, launch_overhead_us: float | None = None) -> float:
    """GPU tiers only (a CPU tier's calibration already carries its operator overhead): the time to launch the
    batch's kernels in eager mode."""
    if tier.kind != "gpu":
        return 0.0
    engine = load_engines()[DEFAULT_ENGINE]
    ops = ops_per_forward(point, engine)
    if launch_overhead_us is not None:
        engine = engine.model_copy(update={"launch_overhead_us": launch_overhead_us})
    return engine.floor_s(forwards=point.llm.forwards, ops_per_forward=ops)


def measured(point: OperatingPoint, tier: Tier) -> TierTiming:
    return TierTiming(
        tier=tier.name,
        basis=Basis.MEASURED,
        dtype=point.dtype,
        fits=True,
        memory_need_bytes=point.memory_need.total_bytes,
        memory_capacity_bytes=tier.memory_bytes,
        batch_p50_s=point.batch_p50_s,
        batch_p99_s=point.batch_p99_s,
        llm_s=point.llm.measured_s,
        p99_basis=f"measured over {point.batches} batches"
        + (
            f" of a LoadGen {point.load_mode} run, {point.per_batch:.3g} requests each on average"
            if point.load_mode
            else ""
        )
        + (f" (near the maximum: fewer than {MIN_SAMPLES_FOR_P99})" if point.batches < MIN_SAMPLES_FOR_P99 else ""),
    )


# On a GPU, a point whose roofline time (at catalogue efficiencies) is below this share of its measured LLM time is
# launch-bound: it gives the launch overhead and calibrates no efficiency; above it, the reverse.
MIN_ROOFLINE_SHARE = 0.2


def calibration_scale(point: OperatingPoint, tier: Tier) -> float | None:
    """How much faster (>1) or slower (<1) the catalogue's default efficiencies would project this point's LLM
    work than was measured on `tier`, its own tier, in the dtype it ran in and net of the kernel-launch floor;
    None when there is nothing to compare, or when launches dominate the measured time."""
    peak = peak_flops(tier, point.dtype)
    measured_s = point.llm.measured_s
    if not peak or measured_s <= 0:
        return None
    roofline = measured_llm_roofline(point, tier, peak, default_efficiency(tier))
    if tier.kind == "gpu" and roofline < MIN_ROOFLINE_SHARE * measured_s:
        return None  # launch-bound: it measures the launch overhead instead (measured_launch_overhead_us)
    net_s = measured_s - launch_floor_s(point, tier)  # a CPU tier has no floor: its scale carries operator overhead
    return roofline / net_s if net_s > 0 else None


def measured_llm_roofline(point: OperatingPoint, tier: Tier, peak: float, efficiency: Efficiency) -> float:
    """The roofline time of a point's LLM work on its own tier, in the dtype it was measured in."""
    return llm_time(
        parts=point.llm.roofline_parts(),
        peak=peak,
        bandwidth=tier.bandwidth_bytes_per_s,
        efficiency=efficiency,
    ).seconds


def measured_launch_overhead_us(point: OperatingPoint, tier: Tier) -> float | None:
    """A launch-bound GPU result's own per-launch overhead: its LLM time beyond the roofline (at the catalogue's
    efficiencies), per launched operator. None on a CPU, or where the roofline accounts for more than
    MIN_ROOFLINE_SHARE of the time: a slow, compute-heavy forward is not launch overhead."""
    if tier.kind != "gpu":
        return None
    peak = peak_flops(tier, point.dtype)
    engine = load_engines()[DEFAULT_ENGINE]
    launches = point.llm.forwards * ops_per_forward(point, engine)
    if not peak or launches <= 0 or point.llm.measured_s <= 0:
        return None
    roofline = measured_llm_roofline(point, tier, peak, default_efficiency(tier))
    if roofline > MIN_ROOFLINE_SHARE * point.llm.measured_s:
        return None
    return (point.llm.measured_s - roofline) / launches * 1e6
