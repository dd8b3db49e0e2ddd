"""Everything before the measured batches: data, model, tokenizer, the loop, and one FLOP-counting
calibration batch (never timed). Shared by every measurement strategy."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from bench.core.dtypes import dtype as dtype_entry
from bench.core.interrupts import raise_if_stopped
from bench.core.kinds import WarningKind
from bench.core.stages import LOOP_STAGES
from bench.data.interactions import Interactions
from bench.hardware.allocator import release_freed_memory
from bench.hardware.environment import OtherProcessesCpu, usable_cores
from bench.loop.pipeline import BatchRecord, RecommendationLoop
from bench.measurement.inputs import check_prompts_fit, load_inputs
from bench.measurement.preflight import (
    checkpoint_folder,
    declared_architecture,
    point_advice,
    weights_source,
)
from bench.models.build import LoadedModel, build_random_model, load_checkpoint
from bench.models.levers import apply_levers
from bench.results.model import ResultWarning
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario
from bench.trackers.flops import FlopResult, FlopTracker
from bench.trackers.memory import MemoryResult, MemoryTracker

# Of all cores, used by other processes during set-up or the measured window: above it, they compete with us.
BUSY_CPU_FRACTION = 0.25
# torch's choice for this machine before any scenario sets one, within the cores a container may use (torch counts
# the host's cores under a CPU quota).
DEFAULT_THREADS = min(torch.get_num_threads(), usable_cores())


@dataclass(kw_only=True)
class PreparedPoint:
    """A point ready to measure: its loop, and what setting it up took."""

    started: float  # perf_counter at the start, for the point's wall time
    dtype: str
    warnings: list[ResultWarning]
    device: torch.device
    setup_seconds: dict[str, float]
    setup_memory: MemoryResult
    interactions: Interactions
    loaded: LoadedModel
    loop: RecommendationLoop
    calibration: BatchRecord  # the FLOP-counted batch
    flops: FlopResult
    params_total: int  # parameters of the model as built, before a lever changed how they are stored
    weights_source: str | None


def prepare_point(point: ScenarioPoint) -> PreparedPoint:
    """Set-up under its own memory window (so the serving peak is not hidden by a large dataset or a checkpoint
    being read): inputs first, so that prompts too long for the budget are found before a model is built; then
    the model, the loop and one FLOP-counting batch."""
    scenario = point.scenario
    started = time.perf_counter()
    dtype_name, found = point_advice(scenario)
    _warn(found)
    device = torch.device(scenario.device)
    # Always set: a previous point's `threads` must not carry over to this one.
    torch.set_num_threads(scenario.threads or DEFAULT_THREADS)
    torch.manual_seed(scenario.seed)
    return _set_up(point, dtype_name, device, started=started, found=found)


def _warn(found: list[ResultWarning]) -> None:
    for warning in found:
        warnings.warn(warning.message, stacklevel=3)


def _set_up(
    point: ScenarioPoint, dtype_name: str, device: torch.device, *, started: float, found: list[ResultWarning]
) -> PreparedPoint:
    scenario = point.scenario
    # Other processes' CPU use is sampled while the inputs and the model are built and the FLOP-counting batch
    # runs (this process's own work, no child processes; with the batch the window is long enough to need no
    # padding sleep), not over the levers: torch.compile's worker processes are not "others".
    with OtherProcessesCpu() as others:
        with MemoryTracker(device) as setup_memory:
            inputs = load_inputs(scenario)
            check_prompts_fit(scenario, inputs)
            raise_if_stopped()
            setup = dict(inputs.seconds)
            begin = time.perf_counter()
            loaded = _load_model(scenario, dtype_entry(dtype_name).torch(), device)
            setup["build_model"] = time.perf_counter() - begin
            loop = RecommendationLoop(
                scenario, inputs.interactions, loaded.model, inputs.tokenizer, device, title_tokens=inputs.title_tokens
            )
            setup.update(loop.setup.seconds)
        raise_if_stopped()
        flops = FlopTracker(count=LOOP_STAGES)
        users = loop.next_users()
        calibration = loop.run_batch(users, flops.stage)
    busy = busy_machine_warnings(others)
    _warn(busy)
    params_total = sum(p.numel() for p in loaded.model.parameters())  # before quantization packs them away
    setup.update(_apply_levers(scenario, loop, users))
    return PreparedPoint(
        started=started,
        dtype=dtype_name,
        warnings=[*found, *busy],
        device=device,
        setup_seconds=setup,
        setup_memory=setup_memory.result(),
        interactions=inputs.interactions,
        loaded=loaded,
        loop=loop,
        calibration=calibration,
        flops=flops.result(),
        params_total=params_total,
        weights_source=weights_source(scenario),
    )


def _apply_levers(scenario: Scenario, loop: RecommendationLoop, users: torch.Tensor) -> dict[str, float]:
    """Quantize, prepack and compile after the FLOP-counting batch (the counter sees the float model's
    multiply-adds, not int8 or oneDNN kernels or a compiled graph), then run one untimed batch through the changed
    model: compiling happens there, and its time is set-up, never a timed iteration."""
    optimize = scenario.optimize
    if optimize.quantize == "none" and not optimize.compile and not optimize.prepack:
        return {}
    begin = time.perf_counter()
    loop.set_model(
        apply_levers(loop.model, quantize=optimize.quantize, compile=optimize.compile, prepack=optimize.prepack)
    )
    # The float weights that int8 or prepacked copies replaced were freed into a heap this process keeps
    # (bench.hardware.allocator): handed back here, or they would count in the lever's memory. qwen2.5-0.5b with
    # prepack: 3.65 GB resident without this, 2.25 GB with it, 2.27 GB with glibc's defaults (2026-11-29).
    release_freed_memory()
    applied = time.perf_counter() - begin
    begin = time.perf_counter()
    weights = loop.state.weights.clone()
    loop.run_batch(users, _untimed)
    loop.state.weights = weights  # the warm-up's feedback must not set a lever's timed batches apart
    first = time.perf_counter() - begin
    return {"apply_levers": applied, "compile_first_batch" if optimize.compile else "levers_first_batch": first}


@contextmanager
def _untimed(_stage: str) -> Iterator[None]:
    yield


def busy_machine_warnings(others: OtherProcessesCpu, *, during: str = "set-up") -> list[ResultWarning]:
    """Say so in the result when other processes competed for the CPU `during` set-up or the measured window,
    or the container's CPU quota held this process back, rather than let a busy machine pass for a slow one."""
    found = []
    if others.share is not None and others.share > BUSY_CPU_FRACTION:
        found.append(
            ResultWarning(
                kind=WarningKind.BUSY_MACHINE,
                message=f"machine busy during {during}: other processes used {others.share:.0%} of {others.cores} "
                "logical cores; timings may be inflated",
            )
        )
    throttled, periods = others.throttled_periods
    if throttled:
        found.append(
            ResultWarning(
                kind=WarningKind.BUSY_MACHINE,
                message=f"CPU quota throttled this process during {during}: in {throttled} of {periods} periods "
                f"({throttled / periods:.0%}, cgroup cpu.stat); timings include the waits: raise the quota or "
                "lower threads",
            )
        )
    return found


def _load_model(scenario: Scenario, dtype: torch.dtype, device: torch.device) -> LoadedModel:
    attention = scenario.optimize.attention
    folder = checkpoint_folder(scenario)
    if folder is not None:
        return load_checkpoint(folder, dtype=dtype, device=device, attention=attention)
    return build_random_model(
        declared_architecture(scenario),
        dtype=dtype,
        device=device,
        seed=scenario.seed,
        attention=attention,
        engine=scenario.engine,
    )
