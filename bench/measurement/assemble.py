"""The one function that turns a prepared point and its measurement into the typed result."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from bench.core.device import Device
from bench.core.dtypes import dtype_bytes
from bench.core.stages import Stage
from bench.hardware.gemm_peak import GemmPeak
from bench.hardware.tiers import Tier
from bench.loop.evaluation import EvaluationSamples
from bench.measurement import derive
from bench.measurement.prepare import PreparedPoint
from bench.measurement.quality import quality_evaluation
from bench.measurement.strategy import Measurement
from bench.models.analytic import memory_estimate, total_params
from bench.models.presets import preset_metadata
from bench.results.model import (
    CalibrationBatch,
    CountedFlops,
    Environment,
    Flops,
    GemmPeakInfo,
    HardwareTier,
    Latency,
    Memory,
    MemoryEstimate,
    MemoryWindow,
    ModelInfo,
    Peak,
    PointInfo,
    PresetInfo,
    Result,
    Setup,
    Summary,
    WorkloadInfo,
)
from bench.results.model import device_name as result_device_name
from bench.scenarios.loader import ScenarioPoint


def assemble_result(
    *,
    point: ScenarioPoint,
    prepared: PreparedPoint,
    measurement: Measurement,
    environment: Environment,
    gemm_peak: GemmPeak,
    gemm_peak_measured_now: bool,
    tier: Tier | None,
    created_at: datetime,
    wall_s: float,
    evaluation: EvaluationSamples | None = None,
) -> Result:
    scenario, records = point.scenario, measurement.records
    arch, dtype = prepared.loaded.architecture, prepared.dtype
    samples = {Stage(name): values for name, values in measurement.latency.samples.items()}
    counted = {Stage(name): flops for name, flops in prepared.flops.per_stage.items()}
    peak = GemmPeakInfo(**gemm_peak.measurement(), measured_now=gemm_peak_measured_now)
    model = ModelInfo(
        label=scenario.model.label,
        weights=prepared.loaded.weights,
        architecture=arch,
        params_total=prepared.params_total,
        params_analytic=total_params(arch),
        dtype=dtype,
        dtype_bytes=dtype_bytes(dtype),
        preset=PresetInfo(**preset_metadata(scenario.model.preset)) if scenario.model.preset else None,
        weights_source=prepared.weights_source,
    )
    work = derive.work_done(records)
    evaluated = (
        quality_evaluation(evaluation, resamples=scenario.evaluation.bootstrap_resamples) if evaluation else None
    )
    latency_summary = derive.latency_summary(samples)
    quality = derive.quality(records, scenario, prepared.loaded.weights, evaluation=evaluated)
    device_name = result_device_name(environment, Device.parse(scenario.device))
    calibration = prepared.calibration
    return Result(
        created_at=created_at,
        scenario=scenario,
        scenario_file=str(point.source_file),
        point=PointInfo(index=point.index, key=point.key, values=point.values, spec_hash=point.spec_hash),
        machine=environment.machine_slug,
        environment=environment,
        model=model,
        workload=WorkloadInfo(
            source=prepared.interactions.source,
            users=prepared.interactions.n_users,
            items=prepared.interactions.catalogue.n_items,
            stats=prepared.interactions.stats,
        ),
        setup=Setup(seconds=prepared.setup_seconds),
        latency=Latency(
            method=measurement.latency.method,
            sync_each_stage=measurement.latency.sync_each_stage,
            window=measurement.latency_window,
            warmup_iterations=scenario.repetitions.warmup,
            iterations=len(records),
            samples=samples,
        ),
        memory=Memory(
            measured=MemoryWindow(**asdict(measurement.memory)),
            measured_window=measurement.memory_window,
            setup_measured=MemoryWindow(**asdict(prepared.setup_memory)),
            analytic_estimate=MemoryEstimate(
                **memory_estimate(arch, [f for r in (calibration, *records) for f in r.forwards], dtype=dtype)
            ),
            analytic_basis="estimate: largest forward of the calibration and timed batches",
        ),
        flops=Flops(
            counted=CountedFlops(
                method=prepared.flops.method,
                per_batch=counted,
                ops_per_batch={Stage(name): n for name, n in prepared.flops.ops_per_stage.items()},
            ),
            calibration_batch=CalibrationBatch(
                users=calibration.users,
                prompt_tokens=calibration.prompt_tokens,
                forwards=calibration.forwards,
                interest_shape=calibration.interest_shape,
                retrieval_shape=calibration.retrieval_shape,
            ),
        ),
        energy=derive.energy_section(measurement.energy, records, scenario, window=measurement.energy_window),
        hardware_tier=HardwareTier(name=tier.name, tdp_watts=tier.tdp_watts) if tier else None,
        peak=Peak(gemm=peak),
        work=work,
        quality=quality,
        load=measurement.load,
        warnings=[
            *prepared.warnings,
            *measurement.warnings,
            *derive.statistical_warnings(latency_summary, quality, load_test=measurement.load is not None),
        ],
        wall_time_s=wall_s,
        summary=Summary(
            latency=latency_summary,
            throughput=derive.throughput(
                scenario, work, latency_summary, measurement.throughput, samples.get(Stage.END_TO_END)
            ),
            flops=derive.flops_summary(
                arch=arch,
                dtype=dtype,
                scenario=scenario,
                counted=counted,
                calibration=calibration,
                records=records,
                samples=samples,
                gemm_peak=peak,
                device_name=device_name,
            ),
        ),
    )
