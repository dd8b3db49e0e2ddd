"""Everything before the measured batches: data, model, tokenizer, the loop, and one FLOP-counting
calibration batch (never timed). Shared by every measurement strategy."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.core.dtypes import dtype as dtype_entry
from bench.core.errors import InputError
from bench.core.kinds import WarningKind
from bench.core.stages import LOOP_STAGES
from bench.data import load_interactions
from bench.data.interactions import Interactions
from bench.data.tokenizer import train_catalogue_tokenizer
from bench.hardware.environment import other_processes_cpu_fraction
from bench.loop.pipeline import BatchRecord, RecommendationLoop
from bench.loop.prompts import LETTERS, TEMPLATE_TEXTS
from bench.measurement.preflight import declared_architecture, resolve_dtype
from bench.models.architecture import Architecture
from bench.models.build import LoadedModel, build_random_model, load_checkpoint
from bench.results.model import ResultWarning
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario
from bench.trackers.flops import FlopResult, FlopTracker
from bench.trackers.memory import MemoryResult, MemoryTracker

# Our own BPE is trained with at most this many tokens (the model's vocabulary caps it further).
CATALOGUE_VOCAB = 8192
FULL_HISTORY_CAP = 200
BUSY_CPU_FRACTION = 0.25  # of all cores used by other processes before a run: above it, they compete with us
DEFAULT_THREADS = torch.get_num_threads()  # torch's choice for this machine, before any scenario sets one


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


def prepare_point(point: ScenarioPoint) -> PreparedPoint:
    """Set-up under its own memory window (so the serving peak is not hidden by a large dataset or a checkpoint
    being read), then one FLOP-counting batch."""
    scenario = point.scenario
    started = time.perf_counter()
    dtype_name, found = resolve_dtype(scenario)
    found += busy_machine_warnings()
    for warning in found:
        warnings.warn(warning.message, stacklevel=3)
    device = torch.device(scenario.device)
    # Always set: a previous point's `threads` must not carry over to this one.
    torch.set_num_threads(scenario.threads or DEFAULT_THREADS)
    torch.manual_seed(scenario.seed)
    setup: dict[str, float] = {}
    torch_dtype = dtype_entry(dtype_name).torch()
    with MemoryTracker(device) as setup_memory:
        interactions = _timed(setup, "load_data", lambda: _load_data(scenario))
        loaded = _timed(setup, "build_model", lambda: _load_model(scenario, torch_dtype, device))
        tokenizer = loaded.tokenizer or _timed(
            setup, "train_tokenizer", lambda: _train_tokenizer(interactions, loaded.architecture)
        )
        loop = RecommendationLoop(scenario, interactions, loaded.model, tokenizer, device)
        setup.update(loop.setup.seconds)
    flops = FlopTracker(count=LOOP_STAGES)
    calibration = loop.run_batch(loop.next_users(), flops.stage)
    return PreparedPoint(
        started=started,
        dtype=dtype_name,
        warnings=found,
        device=device,
        setup_seconds=setup,
        setup_memory=setup_memory.result(),
        interactions=interactions,
        loaded=loaded,
        loop=loop,
        calibration=calibration,
        flops=flops.result(),
    )


def busy_machine_warnings() -> list[ResultWarning]:
    """Say so in the result when other processes compete for the CPU, rather than let a busy machine pass for
    a slow one."""
    others = other_processes_cpu_fraction()
    if others <= BUSY_CPU_FRACTION:
        return []
    import psutil

    cores = psutil.cpu_count(logical=True) or 1
    return [
        ResultWarning(
            kind=WarningKind.BUSY_MACHINE,
            message=f"machine busy at start: other processes used {others:.0%} of {cores} logical cores; "
            "timings may be inflated",
        )
    ]


def _timed(into: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    begin = time.perf_counter()
    value = work()
    into[name] = time.perf_counter() - begin
    return value


def _load_data(scenario: Scenario) -> Interactions:
    workload = scenario.workload
    interactions = load_interactions(
        dataset=workload.dataset,
        path=workload.path,
        items_path=workload.items_path,
        n_users=workload.num_users,
        n_items=workload.num_items,
        # Full histories (not just the prompt's recent items) decide which items count as seen.
        max_history=max(workload.history_length, FULL_HISTORY_CAP),
        seed=scenario.seed,
    )
    unseen_minimum = max(len(u.items) for u in interactions.users) + workload.candidates
    if interactions.catalogue.n_items < unseen_minimum:
        source = workload.path or "the synthetic catalogue (workload.num_items)"
        raise InputError(
            f"workload.candidates: {workload.candidates} unseen candidates cannot be drawn from {source}: "
            f"it has {interactions.catalogue.n_items} items and the longest history already covers "
            f"{unseen_minimum - workload.candidates}"
        )
    return interactions


def _load_model(scenario: Scenario, dtype: torch.dtype, device: torch.device) -> LoadedModel:
    if scenario.model.path is not None:
        return load_checkpoint(scenario.model.path, dtype=dtype, device=device)
    arch = declared_architecture(scenario)
    assert arch is not None
    return build_random_model(arch, dtype=dtype, device=device, seed=scenario.seed)


def _train_tokenizer(interactions: Interactions, arch: Architecture) -> Any:
    catalogue = interactions.catalogue
    texts = [
        *catalogue.titles,
        *(g for genres in catalogue.genres for g in genres),
        *TEMPLATE_TEXTS,
        *LETTERS,
    ]
    return train_catalogue_tokenizer(texts, vocab_size=min(CATALOGUE_VOCAB, arch.vocab_size))
