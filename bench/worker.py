"""Run one resolved scenario point and return its result as a JSON-ready dict.

This is the unit a sweep fans out: a resolved spec goes in, a result comes out, nothing else is shared.
Order of work: checks that need this machine, data, model, a FLOP-counting calibration batch (never timed),
warm-up batches (discarded), then timed batches until the repetition policy is met.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import psutil
import torch
import yaml

from bench.data import load_interactions
from bench.data.interactions import Interactions
from bench.data.tokenizer import train_catalogue_tokenizer
from bench.errors import InputError
from bench.hardware.environment import collect_environment, cpu_has_native_bf16
from bench.hardware.gemm_peak import GemmPeak, cached_gemm_peak
from bench.hardware.tiers import Tier
from bench.loop.pipeline import STAGES, BatchRecord, RecommendationLoop
from bench.loop.prompts import LETTERS, TEMPLATE_TEXTS
from bench.loop.ranking import chance_hit_rate, chance_ndcg
from bench.models.analytic import DTYPE_BYTES, memory_estimate, total_params, weights_bytes
from bench.models.architecture import Architecture
from bench.models.build import LoadedModel, build_random_model, load_checkpoint
from bench.models.presets import get_preset, preset_metadata
from bench.results.measures import derive_measures
from bench.results.store import SCHEMA_VERSION
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario
from bench.trackers.energy import EnergyResult, EnergyTracker, co2_grams
from bench.trackers.flops import FlopResult, FlopTracker
from bench.trackers.latency import LatencyResult, LatencyTracker
from bench.trackers.memory import MemoryResult, MemoryTracker

CPU_DTYPES_FILE = Path(__file__).parent / "hardware" / "cpu_dtypes.yaml"
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Our own BPE is trained with at most this many tokens (the model's vocabulary caps it further).
CATALOGUE_VOCAB = 8192
FULL_HISTORY_CAP = 200
CPU_GEMM_SIDE, GPU_GEMM_SIDE = 2048, 8192
BUSY_CPU_FRACTION = 0.25  # of all cores used by other processes before a run: above it, they compete with us
DEFAULT_THREADS = torch.get_num_threads()  # torch's choice for this machine, before any scenario sets one

ProgressCallback = Callable[[int, int], None]  # (measured iterations so far, target iterations)


def resolve_dtype(scenario: Scenario) -> tuple[str, list[str]]:
    """The dtype a point runs in, and warnings about it. `auto` is float32 on a CPU, bfloat16 on CUDA."""
    on_cpu = scenario.device == "cpu"
    dtype = scenario.dtype if scenario.dtype != "auto" else _auto_dtype(on_cpu)
    notes: list[str] = []
    if on_cpu and dtype != "float32" and not cpu_has_native_bf16():
        slowdown = _cpu_dtype_slowdowns()[dtype]
        notes.append(
            f"dtype {dtype} on a CPU without native bf16/fp16 support (no avx512_bf16/amx): expect a forward "
            f"~{slowdown['forward_slowdown']}x slower than float32 (a bare GEMM ~{slowdown['gemm_slowdown']}x; "
            f"{slowdown['source']}); use dtype float32 or auto on this machine"
        )
    return dtype, notes


def _auto_dtype(on_cpu: bool) -> str:
    if on_cpu:
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


@cache
def _cpu_dtype_slowdowns() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(CPU_DTYPES_FILE.read_text())["without_native_support"]


def busy_machine_notes(window_s: float = 0.25) -> list[str]:
    """Other work on the machine inflates timings badly (torch's threads spin while they wait for a core):
    say so in the result rather than let a busy machine pass for a slow one. Measured as the CPU time other
    processes use over a short window (the load average would count this process's own previous points)."""
    cores = psutil.cpu_count(logical=True) or 1
    me = psutil.Process()
    system_before, mine_before = psutil.cpu_times(), me.cpu_times()
    time.sleep(window_s)
    system_after, mine_after = psutil.cpu_times(), me.cpu_times()
    busy = (sum(system_after) - system_after.idle) - (sum(system_before) - system_before.idle)
    mine = (mine_after.user + mine_after.system) - (mine_before.user + mine_before.system)
    others = max(0.0, busy - mine) / (window_s * cores)
    if others > BUSY_CPU_FRACTION:
        return [
            f"machine busy at start: other processes used {others:.0%} of {cores} logical cores; "
            "timings may be inflated"
        ]
    return []


def declared_architecture(scenario: Scenario) -> Architecture | None:
    """The architecture known without loading anything (None for a checkpoint)."""
    if scenario.model.preset:
        return get_preset(scenario.model.preset)
    return scenario.model.architecture


def check_runnable(scenario: Scenario, *, field_prefix: str = "") -> None:
    """Checks that need this machine: the device exists and the weights fit in its memory."""
    if scenario.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"{field_prefix}device: {scenario.device} requested but CUDA is not available here")
        index = int(scenario.device.split(":")[1]) if ":" in scenario.device else 0
        if index >= torch.cuda.device_count():
            raise InputError(
                f"{field_prefix}device: {scenario.device} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
        capacity = torch.cuda.get_device_properties(index).total_memory
        where = torch.cuda.get_device_name(index)
    else:
        capacity = psutil.virtual_memory().total
        where = "this machine's RAM"
    _check_input_paths(scenario, field_prefix)
    arch = declared_architecture(scenario)
    dtype, _ = resolve_dtype(scenario)
    if arch is not None and weights_bytes(arch, dtype=dtype) > capacity:
        need = weights_bytes(arch, dtype=dtype) / 2**30
        raise InputError(
            f"{field_prefix}model: {scenario.model.label} needs {need:.1f} GiB for its {dtype} weights alone; "
            f"{where} has {capacity / 2**30:.1f} GiB"
        )


def _check_input_paths(scenario: Scenario, field_prefix: str) -> None:
    """Data and checkpoint paths exist and have the right kind, before any point runs."""
    workload = scenario.workload
    expected = [
        ("workload.path", workload.path, workload.dataset == "movielens"),
        ("workload.items_path", workload.items_path, False),
        ("model.path", scenario.model.path, True),
    ]
    for field, path, is_folder in expected:
        if path is None:
            continue
        if is_folder and not path.is_dir():
            raise InputError(f"{field_prefix}{field}: {path}: no such folder")
        if not is_folder and not path.is_file():
            raise InputError(f"{field_prefix}{field}: {path}: no such file")


def run_point(
    point: ScenarioPoint,
    *,
    gemm_peak_dir: Path,
    progress: ProgressCallback | None = None,
    tier: Tier | None = None,
) -> dict:
    """Measure one point; returns the result dict (see results/README.md for its layout). `tier` is the
    catalogue entry this machine corresponds to: its TDP drives the modelled energy where no energy counter
    exists."""
    prepared = prepare_point(point)
    scenario, device, loop = point.scenario, prepared.device, prepared.loop

    with MemoryTracker(device) as memory:
        latency = LatencyTracker(device)
        for _ in range(scenario.repetitions.warmup):
            loop.run_batch(loop.next_users(), latency.stage)
        latency.reset()
        with EnergyTracker(device, modelled_tdp_watts=tier.tdp_watts if tier else None) as energy:
            records = _measure(loop, latency, scenario, progress)

    # A 2048^3 GEMM saturates 2 CPU cores but not a datacentre GPU, which needs larger matrices to peak.
    gemm_side = GPU_GEMM_SIDE if device.type == "cuda" else CPU_GEMM_SIDE
    peak = cached_gemm_peak(device, TORCH_DTYPES[prepared.dtype], gemm_peak_dir, n=gemm_side)
    return assemble_result(
        point=point,
        dtype=prepared.dtype,
        notes=prepared.notes,
        loaded=prepared.loaded,
        interactions=prepared.interactions,
        setup=prepared.setup,
        calibration=prepared.calibration,
        flop_result=prepared.flops,
        latency_result=latency.result(),
        memory_result=memory.result(),
        setup_memory_result=prepared.setup_memory,
        energy_result=energy.result(),
        tier=tier,
        records=records,
        gemm_peak=peak,
        wall_s=time.perf_counter() - prepared.started,
    )


@dataclass
class PreparedPoint:
    """Everything before the measured batches: data, model, tokenizer, the loop and its FLOP calibration."""

    started: float  # perf_counter at the start, for the point's wall time
    dtype: str
    notes: list[str]
    device: torch.device
    setup: dict[str, float]
    setup_memory: MemoryResult
    interactions: Interactions
    loaded: LoadedModel
    loop: RecommendationLoop
    calibration: BatchRecord
    flops: FlopResult


def prepare_point(point: ScenarioPoint) -> PreparedPoint:
    """Shared by plain runs and load tests: checks, set-up under its own memory window (so the serving peak is
    not hidden by a large dataset or a checkpoint being read), then one FLOP-counting batch (never timed)."""
    scenario = point.scenario
    check_runnable(scenario)
    started = time.perf_counter()
    dtype_name, notes = resolve_dtype(scenario)
    notes += busy_machine_notes()
    for note in notes:
        warnings.warn(note, stacklevel=3)
    device = torch.device(scenario.device)
    # Always set: a previous point's `threads` must not carry over to this one.
    torch.set_num_threads(scenario.threads or DEFAULT_THREADS)
    torch.manual_seed(scenario.seed)
    setup: dict[str, float] = {}
    with MemoryTracker(device) as setup_memory:
        interactions = _timed(setup, "load_data", lambda: _load_data(scenario))
        loaded = _timed(setup, "build_model", lambda: _load_model(scenario, TORCH_DTYPES[dtype_name], device))
        tokenizer = loaded.tokenizer or _timed(
            setup, "train_tokenizer", lambda: _train_tokenizer(interactions, loaded.architecture)
        )
        loop = RecommendationLoop(scenario, interactions, loaded.model, tokenizer, device)
        setup.update(loop.setup.seconds)
    flops = FlopTracker(count=STAGES)
    calibration = loop.run_batch(loop.next_users(), flops.stage)
    return PreparedPoint(
        started, dtype_name, notes, device, setup, setup_memory.result(), interactions, loaded, loop,
        calibration, flops.result(),
    )  # fmt: skip


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


def _measure(
    loop: RecommendationLoop,
    latency: LatencyTracker,
    scenario: Scenario,
    progress: ProgressCallback | None,
) -> list[BatchRecord]:
    """Timed batches until both min_iterations and min_duration_s are met, capped at max_iterations."""
    policy = scenario.repetitions
    records: list[BatchRecord] = []
    began = time.perf_counter()
    while len(records) < policy.max_iterations and (
        len(records) < policy.min_iterations or time.perf_counter() - began < policy.min_duration_s
    ):
        records.append(loop.run_batch(loop.next_users(), latency.stage))
        if progress:
            progress(len(records), policy.min_iterations)
    return records


def assemble_result(
    *,
    point: ScenarioPoint,
    dtype: str,
    notes: list[str],
    loaded: LoadedModel,
    interactions: Interactions,
    setup: dict[str, float],
    calibration: BatchRecord,
    flop_result: FlopResult,
    latency_result: LatencyResult,
    memory_result: MemoryResult,
    setup_memory_result: MemoryResult,
    energy_result: EnergyResult,
    tier: Tier | None,
    records: list[BatchRecord],
    gemm_peak: GemmPeak,
    wall_s: float,
) -> dict[str, Any]:
    scenario = point.scenario
    arch = loaded.architecture
    environment = collect_environment()
    model_info: dict[str, Any] = {
        "label": scenario.model.label,
        "weights": loaded.weights,
        "architecture": arch.model_dump(),
        "params_total": sum(p.numel() for p in loaded.model.parameters()),
        "params_analytic": total_params(arch),
        "dtype": dtype,
        "dtype_bytes": DTYPE_BYTES[dtype],
    }
    if scenario.model.preset:
        model_info["preset"] = preset_metadata(scenario.model.preset)
    result: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "scenario": scenario.model_dump(mode="json"),
        "scenario_file": str(point.source_file),
        "point": {
            "index": point.index,
            "key": point.key,
            "values": point.values,
            "spec_hash": point.spec_hash,
        },
        "machine": environment["machine_slug"],
        "environment": environment,
        "model": model_info,
        "workload": {
            "source": interactions.source,
            "users": interactions.n_users,
            "items": interactions.catalogue.n_items,
            "stats": interactions.stats,
        },
        "setup": {"unit": "s", "seconds": setup, "note": "one-off work, single samples"},
        "latency": {
            "unit": latency_result.unit,
            "method": latency_result.method,
            "warmup_iterations": scenario.repetitions.warmup,
            "iterations": len(records),
            "samples": latency_result.samples,
        },
        "memory": {
            "unit": "bytes",
            "measured": asdict(memory_result),
            "measured_window": "warm-up and timed batches (the model is resident throughout)",
            "setup_measured": asdict(setup_memory_result),
            "analytic_estimate": memory_estimate(
                arch, [f for record in (calibration, *records) for f in record.forwards], dtype=dtype
            ),
            "analytic_basis": "estimate: largest forward of the calibration and timed batches",
        },
        "flops": {
            "counted": {
                "method": flop_result.method,
                "unit": flop_result.unit,
                "per_batch": flop_result.per_stage,
            },
            "calibration_batch": _shape_summary(calibration),
        },
        "energy": _energy(energy_result, records, scenario),
        "hardware_tier": {"name": tier.name, "tdp_watts": tier.tdp_watts} if tier else None,
        "peak": {"gemm": asdict(gemm_peak)},
        "work": _work_summary(records),
        "quality": _quality(records, scenario, loaded.weights),
        "warnings": notes,
        "wall_time_s": wall_s,
    }
    result.update(derive_measures(result, arch=arch, calibration=calibration, records=records))
    return result


def _energy(energy: EnergyResult, records: list[BatchRecord], scenario: Scenario) -> dict[str, Any]:
    """The tracker's raw result over the timed batches, plus joules per request and per recommendation."""
    figures: dict[str, Any] = asdict(energy)
    requests = sum(r.users for r in records)
    if energy.joules is not None:
        figures["joules_per_request"] = energy.joules / requests
        figures["joules_per_recommendation"] = energy.joules / (requests * scenario.workload.top_n)
        if scenario.grid_intensity_gco2_per_kwh is not None:
            figures["co2_grams_per_request"] = co2_grams(energy.joules, scenario.grid_intensity_gco2_per_kwh) / requests
    figures["window"] = "timed batches only (warm-up and calibration excluded)"
    return figures


def _shape_summary(record: BatchRecord) -> dict[str, Any]:
    return {
        "users": record.users,
        "prompt_tokens": record.prompt_tokens,
        "forwards": [asdict(f) for f in record.forwards],
        "interest_shape": record.interest_shape,
        "retrieval_shape": record.retrieval_shape,
    }


def _work_summary(records: list[BatchRecord]) -> dict[str, Any]:
    prompt_tokens = [t for r in records for t in r.prompt_tokens]
    padded = [f.batch * f.new_tokens for r in records for f in r.forwards[:1]]
    return {
        "requests": sum(r.users for r in records),
        "prompt_tokens_mean": sum(prompt_tokens) / len(prompt_tokens),
        "prompt_tokens_max": max(prompt_tokens),
        "prompt_tokens_padded_per_batch_mean": sum(padded) / len(padded),
        "generated_tokens": sum(r.generated_tokens for r in records),
    }


def _quality(records: list[BatchRecord], scenario: Scenario, weights: str) -> dict[str, Any]:
    requests = sum(r.users for r in records)
    recall = sum(r.held_out_in_candidates for r in records) / requests
    n, k = scenario.workload.top_n, scenario.workload.candidates
    quality: dict[str, Any] = {
        "requests": requests,
        f"hit_rate@{n}": sum(r.hits for r in records) / requests,
        f"ndcg@{n}": sum(r.ndcg_sum for r in records) / requests,
        "candidate_recall": recall,
        f"chance_hit_rate@{n}": recall * chance_hit_rate(n, k),
        f"chance_ndcg@{n}": recall * chance_ndcg(n, k),
        "chance_level": weights == "random",
    }
    if weights == "random":
        quality["note"] = (
            "the LLM has random weights: hit rate and NDCG are chance-level by construction and say nothing "
            "about model quality (candidate_recall reflects the retrieval stage only)"
        )
    return quality
