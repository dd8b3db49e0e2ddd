"""What a measured operating point would take on another hardware tier: a roofline projection of the
measured work, never a guess.

Per stage with FLOPs: time = max(FLOPs / (peak x compute efficiency), bytes / (bandwidth x memory
efficiency)) (the roofline model, Williams, Waterman & Patterson, CACM 2009), summed over stages; stages with
no FLOPs (preprocessing in Python) are host work and keep their measured time. FLOPs and bytes per batch are
the analytic figures for the batches that were timed (checked against FlopCounterMode in the result).
Efficiencies come from the tier catalogue, or are calibrated from a result measured on that tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from bench.core.dtypes import dtype_bytes
from bench.core.kinds import Basis, EnergyMethod, LoadVerdict
from bench.core.stages import LOOP_STAGES, Stage
from bench.hardware.tiers import Tier, peak_flops
from bench.results.model import LoadSection, MemoryEstimate
from bench.results.reader import StoredResult

LLM_STAGE = Stage.SCORING


@dataclass(frozen=True, kw_only=True)
class StageWork:
    flops: float  # per batch, mean over timed batches
    bytes_moved: float | None  # per batch, mean over timed batches (estimate); None: not recorded
    measured_s: float  # per batch, mean of the stage's samples


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """One result reduced to what projection and costing need."""

    path: str
    scenario: str
    point: str
    spec_hash: str
    model: str
    params: int
    batch_size: int
    max_prompt_tokens: int
    prompt_tokens_mean: float
    top_n: int
    dtype: str
    device: str
    device_name: str  # CPU model or GPU name, for matching a catalogue tier
    logical_cores: int
    stages: dict[Stage, StageWork]
    batch_p50_s: float
    batch_p99_s: float
    memory_need: MemoryEstimate  # analytic estimate: weights, KV cache, activations
    energy_j_per_batch: float | None
    energy_method: EnergyMethod
    hardware_tier: str | None  # the catalogue tier recorded at run time, if any
    workload: str  # the point's sweep values other than batch_size: points that differ only in batch size share it
    machine: str
    created_at: str
    commit: str | None
    load_sustained_qps: float | None = None  # server load test: highest VALID QPS (peak search or the target)
    load_p99_slo_ms: float | None = None  # the p99 bound that load test was judged against


def operating_point(stored: StoredResult) -> OperatingPoint:
    result = stored.result
    summary, scenario = result.summary, result.scenario
    latency = summary.latency.stages
    stages = {
        stage: StageWork(
            flops=figures.timed_batches_flops_mean,
            bytes_moved=figures.timed_batches_bytes_moved_estimate_mean,
            measured_s=latency[stage].mean,
        )
        for stage, figures in summary.flops.stages.items()
        if stage in LOOP_STAGES
    }
    return OperatingPoint(
        path=str(stored.path),
        scenario=scenario.name,
        point=result.point.key,
        spec_hash=result.point.spec_hash,
        model=result.model.label,
        params=result.model.params_total,
        batch_size=scenario.batch_size,
        max_prompt_tokens=scenario.max_prompt_tokens,
        prompt_tokens_mean=result.work.prompt_tokens_mean,
        top_n=scenario.workload.top_n,
        dtype=result.model.dtype,
        device=scenario.device,
        device_name=result.device_name,
        logical_cores=result.environment.cpu_logical_cores or 1,
        stages=stages,
        batch_p50_s=result.end_to_end.p50,
        batch_p99_s=result.end_to_end.p99,
        memory_need=result.memory.analytic_estimate,
        energy_j_per_batch=_energy_per_batch(stored),
        energy_method=result.energy.method,
        hardware_tier=result.hardware_tier.name if result.hardware_tier else None,
        workload=",".join(f"{k}={v}" for k, v in result.point.values.items() if k != "batch_size") or "default",
        machine=result.machine,
        created_at=result.created_at.isoformat(),
        commit=result.environment.git_commit,
        **_load_test_figures(result.load),
    )


def _energy_per_batch(stored: StoredResult) -> float | None:
    """Joules per batch of `batch_size` requests. A load test's window includes idle gaps between arrivals and
    batches of varying size, so its per-request figure is used instead of joules / batches."""
    result = stored.result
    if result.load is not None and result.load.energy_joules_per_request is not None:
        return result.load.energy_joules_per_request * result.scenario.batch_size
    joules = result.energy.joules
    return joules / result.latency.iterations if joules is not None else None


def _load_test_figures(load: LoadSection | None) -> dict[str, float | None]:
    """What a server-mode LoadGen result says one machine sustains under its p99 bound."""
    if load is None or load.mode != "server":
        return {}
    sustained = load.peak_qps
    if sustained is None and load.verdict == LoadVerdict.VALID:
        sustained = load.target_qps
    return {"load_sustained_qps": sustained, "load_p99_slo_ms": load.settings.p99_slo_ms}


@dataclass(frozen=True)
class Efficiency:
    compute: float
    memory: float
    source: str  # "catalogue default" or "calibrated from <result path>"


@dataclass(kw_only=True)
class TierTiming:
    """A point's batch latency on a tier, measured or projected."""

    tier: str
    basis: Basis
    dtype: str
    fits: bool
    memory_need_bytes: int
    memory_capacity_bytes: int
    batch_p50_s: float | None
    batch_p99_s: float | None
    llm_bound: str | None  # "compute" or "memory" (projected), None when measured
    efficiency: Efficiency | None
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


def project(point: OperatingPoint, tier: Tier, efficiency: Efficiency) -> TierTiming:
    dtype = target_dtype(point, tier)
    need = memory_need(point, dtype)
    capacity = tier.memory_bytes
    unprojected = {"tier": tier.name, "basis": Basis.PROJECTED, "dtype": dtype, "memory_need_bytes": need,
                   "memory_capacity_bytes": capacity, "batch_p50_s": None, "batch_p99_s": None, "llm_bound": None,
                   "efficiency": efficiency}  # fmt: skip
    if need > capacity:
        return TierTiming(fits=False, **unprojected)
    peak = peak_flops(tier, dtype)
    if not peak:
        return TierTiming(fits=True, notes=[f"no {dtype} peak in the catalogue"], **unprojected)
    total, bound = 0.0, None
    notes = ["host-side stages (no FLOPs) keep their measured time"]
    for name, work in point.stages.items():
        if work.flops <= 0:
            total += work.measured_s  # host work: carried over from the measurement
            continue
        compute_s, memory_s = _roofline(work, point, tier, efficiency, dtype=dtype, peak=peak)
        total += max(compute_s, memory_s)
        if name == LLM_STAGE:
            bound = "compute" if compute_s >= memory_s else "memory"
        if work.bytes_moved is None and not notes[1:]:
            notes.append("bytes moved not recorded in the result: compute roofline only")
    # The measured spread (p99 / p50) is assumed to carry over to the tier.
    tail = point.batch_p99_s / point.batch_p50_s
    return TierTiming(
        **{**unprojected, "batch_p50_s": total, "batch_p99_s": total * tail, "llm_bound": bound},
        fits=True,
        notes=notes,
    )


def _roofline(
    work: StageWork, point: OperatingPoint, tier: Tier, efficiency: Efficiency, *, dtype: str, peak: float
) -> tuple[float, float]:
    """(compute seconds, memory seconds) of one stage's work on `tier`, in `dtype`."""
    compute_s = work.flops / (peak * efficiency.compute)
    if work.bytes_moved is None:
        return compute_s, 0.0
    byte_scale = dtype_bytes(dtype) / dtype_bytes(point.dtype)
    return compute_s, work.bytes_moved * byte_scale / (tier.bandwidth_bytes_per_s * efficiency.memory)


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
        llm_bound=None,
        efficiency=None,
    )


def calibrate(point: OperatingPoint, tier: Tier) -> Efficiency:
    """Scale the tier's default efficiencies so that projecting `point` onto its own tier reproduces the
    measured LLM time; later projections of other points onto this tier use the calibrated figures."""
    default = default_efficiency(tier)
    projected_llm = _llm_seconds(point, tier, default)
    work = point.stages.get(LLM_STAGE)
    if not projected_llm or work is None or work.measured_s <= 0:
        return default
    measured_llm = work.measured_s
    scale = projected_llm / measured_llm
    return replace(
        default,
        compute=min(1.0, default.compute * scale),
        memory=min(1.0, default.memory * scale),
        source=f"calibrated from {point.path}",
    )


def _llm_seconds(point: OperatingPoint, tier: Tier, efficiency: Efficiency) -> float | None:
    dtype = target_dtype(point, tier)
    peak = peak_flops(tier, dtype)
    work = point.stages.get(LLM_STAGE)
    if not peak or work is None:
        return None
    return max(_roofline(work, point, tier, efficiency, dtype=dtype, peak=peak))
