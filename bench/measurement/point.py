"""Measure one resolved scenario point: the unit a sweep fans out (resolved spec in, typed result out).

The flow is the same for every point: preflight (checks that need this machine), prepare (data, model, the
loop, one FLOP-counting batch), a measurement strategy (timed batches, or a LoadGen load test), this machine's
GEMM peak, then one function that assembles the result.
"""

from __future__ import annotations

import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from bench.core.device import Device
from bench.core.dtypes import dtype as dtype_entry
from bench.core.kinds import WarningKind
from bench.hardware.environment import collect_environment
from bench.hardware.gemm_peak import DEFAULT_BUDGET_S, GemmPeak, best_of, measure_gemm_peak, recently_checked_peak
from bench.hardware.tiers import Tier
from bench.loop.evaluation import EvaluationSamples, evaluate
from bench.measurement.assemble import assemble_result
from bench.measurement.preflight import check_runnable
from bench.measurement.prepare import PreparedPoint, prepare_point
from bench.measurement.strategy import MeasureContext, ProgressCallback, Strategy
from bench.measurement.timed import TimedBatches
from bench.results.model import Environment, Result, ResultWarning
from bench.results.reader import CALIBRATION_DIR
from bench.results.store import result_filename
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario

# A 2048^3 GEMM saturates 2 CPU cores but not a datacentre GPU, which needs larger matrices to peak.
CPU_GEMM_SIDE, GPU_GEMM_SIDE = 2048, 8192


def strategy_for(point: ScenarioPoint) -> Strategy:
    if point.scenario.load is None:
        return TimedBatches()
    from bench.measurement.loadtest import LoadTest  # LoadGen is imported only by a load test

    return LoadTest()


def run_point(
    point: ScenarioPoint,
    *,
    machine_dir: Path,
    tier: Tier | None = None,
    progress: ProgressCallback | None = None,
) -> Result:
    """Measure one point. `machine_dir` (results/<machine>) holds this machine's GEMM-peak cache and a load
    test's LoadGen logs; `tier` is the catalogue entry this machine corresponds to (its TDP drives modelled
    energy where no energy counter exists)."""
    check_runnable(point.scenario)
    created_at = datetime.now(timezone.utc)
    prepared = prepare_point(point)
    # Captured (and checked) before measuring, once prepare has set this point's threads: a field that does not
    # fit the result model must not cost a measurement.
    environment = Environment.model_validate(collect_environment())
    context = MeasureContext(
        point=point,
        prepared=prepared,
        tier=tier,
        machine_dir=machine_dir,
        log_stem=result_filename(point.scenario.name, point.key, created_at).removesuffix(".json"),
        progress=progress,
    )
    graphs = compiled_graphs()
    measurement = strategy_for(point).measure(context)
    for found in measurement.warnings:
        warnings.warn(found.message, stacklevel=2)
    recompiled = compiled_graphs() - graphs
    if recompiled:
        prepared.warnings.append(
            ResultWarning(
                kind=WarningKind.SLOW_LEVER,
                message=f"optimize.compile: {recompiled} graph(s) compiled during the timed "
                "batches: their compile time is inside the latencies",
            )
        )
    evaluation = evaluate_quality(point.scenario, prepared)
    peak, measured_now = gemm_peak(point.scenario.device, prepared.dtype, machine_dir / CALIBRATION_DIR)
    return assemble_result(
        point=point,
        prepared=prepared,
        measurement=measurement,
        environment=environment,
        gemm_peak=peak,
        gemm_peak_measured_now=measured_now,
        tier=tier,
        created_at=created_at,
        wall_s=time.perf_counter() - prepared.started,
        evaluation=evaluation,
    )


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (0 where nothing was compiled)."""
    import sys

    if "torch._dynamo" not in sys.modules:
        return 0
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def evaluate_quality(scenario: Scenario, prepared: PreparedPoint) -> EvaluationSamples | None:
    """Ranking quality on the fixed evaluation set, after the timed batches (so it cannot disturb them)."""
    users = scenario.evaluation.users_for(scenario.model, scenario.workload.num_users)
    if users == 0:
        return None
    return evaluate(prepared.loop, users=users, seed=scenario.seed)


def gemm_peak(device: str, dtype: str, cache_dir: Path) -> tuple[GemmPeak, bool]:
    """This machine's GEMM peak, and whether this process measured it: the best cached in `cache_dir` while it was
    checked within the last day (gemm_peak.RECHECK_AFTER_S); otherwise measured once per process (a sweep's later
    points reuse the measurement) and compared with that best."""
    import torch

    key = (device, dtype, torch.get_num_threads())
    if key not in _MEASURED:
        torch_dtype = dtype_entry(dtype).torch()
        recent = recently_checked_peak(device, torch_dtype, cache_dir)
        if recent is not None:
            return recent, False
        side = GPU_GEMM_SIDE if Device.parse(device).is_cuda else CPU_GEMM_SIDE
        _MEASURED[key] = measure_gemm_peak(device, torch_dtype, max_n=side, budget_s=DEFAULT_BUDGET_S)
    return best_of(_MEASURED[key], cache_dir), True


_MEASURED: dict[tuple[str, str, int], GemmPeak] = {}
