"""Checks that need this machine, run before anything is built: the device exists, the weights fit in its
memory, data and checkpoint paths exist, and the dtype is one this CPU runs at a sensible speed.

The runner calls these for every point before the first one runs, and so does `recbench validate --here`;
torch is imported only to ask about a CUDA device.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

import psutil

from bench.core.device import Device
from bench.core.errors import InputError
from bench.core.io import why_not_found
from bench.core.kinds import WarningKind
from bench.core.yaml_files import read_yaml
from bench.hardware.environment import cpu_flags, cpu_has_native_bf16
from bench.measurement.footprint import Footprint, run_footprint
from bench.models.analytic import weights_bytes
from bench.models.architecture import Architecture, read_checkpoint_architecture
from bench.models.presets import get_preset, packaged_weights
from bench.results.model import ResultWarning
from bench.scenarios.loader import ScenarioPoint
from bench.scenarios.spec import Scenario

CPU_DTYPES_FILE = Path(__file__).resolve().parents[1] / "hardware" / "cpu_dtypes.yaml"
CPU_LEVERS_FILE = Path(__file__).resolve().parents[1] / "hardware" / "cpu_levers.yaml"


def resolve_dtype(scenario: Scenario) -> tuple[str, list[ResultWarning]]:
    """The dtype a point runs in, and warnings about it. `auto` is float32 on a CPU, bfloat16 on CUDA."""
    on_cpu = not Device.parse(scenario.device).is_cuda
    dtype = scenario.dtype if scenario.dtype != "auto" else _auto_dtype(on_cpu)
    found: list[ResultWarning] = []
    if on_cpu and dtype != "float32" and not cpu_has_native_bf16():
        slowdown = _cpu_dtype_slowdowns()[dtype]
        found.append(
            ResultWarning(
                kind=WarningKind.SLOW_DTYPE,
                message=f"dtype {dtype} on a CPU without native bf16/fp16 support (no avx512_bf16/amx): expect a "
                f"forward ~{slowdown['forward_slowdown']}x slower than float32 (a bare GEMM "
                f"~{slowdown['gemm_slowdown']}x; {slowdown['source']}); use dtype float32 or auto on this machine",
            )
        )
    return dtype, found


def lever_warnings(scenario: Scenario) -> list[ResultWarning]:
    """What the `optimize` levers are known to do on this CPU (cpu_levers.yaml): slow kernels without the
    instructions they need, a missing compiler, and the measured effect, so nobody expects a lever to be free."""
    if Device.parse(scenario.device).is_cuda:
        return []
    data = _cpu_levers()
    levers, optimize, found = data["levers"], scenario.optimize, []
    if optimize.quantize == "int8_dynamic":
        entry = levers["int8_dynamic"]
        if not any(cpu_flags().get(flag) for flag in entry["needs_any_cpu_flag"]):
            found.append(
                f"optimize.quantize int8_dynamic: this CPU has none of {', '.join(entry['needs_any_cpu_flag'])}, so "
                "torch falls back to reference int8 kernels: expect it slower than float32"
            )
    if optimize.compile:
        entry = levers["compile"]
        if not any(shutil.which(program) for program in entry["needs_program"]):
            found.append(f"optimize.compile: no C++ compiler ({', '.join(entry['needs_program'])}) on PATH: "
                         "torch.compile on a CPU needs one")  # fmt: skip
        seconds = "-".join(str(s) for s in entry["first_batch_s"])
        found.append(
            f"optimize.compile: the first batch compiles (set-up, not timed; {seconds} s for smollm2-135m); "
            f"{_effects(entry)}; {data['source']}"
        )
    if optimize.attention == "eager":
        entry = levers["eager_attention"]
        found.append(f"optimize.attention eager: {_effects(entry)}{_unmeasured(entry, scenario)}; {data['source']}")
    return [ResultWarning(kind=WarningKind.SLOW_LEVER, message=message) for message in found]


def engine_warnings(scenario: Scenario) -> list[ResultWarning]:
    """The native engine is checked against transformers on the CPU only (tests/test_native_engine.py)."""
    if scenario.engine != "native" or not Device.parse(scenario.device).is_cuda:
        return []
    return [
        ResultWarning(
            kind=WarningKind.OTHER,
            message="engine: native has been checked against transformers on CPUs only, never on a GPU; run the "
            "point on engine: transformers beside it before trusting its GPU figures",
        )
    ]


def _effects(entry: dict[str, Any]) -> str:
    """`1.30x faster in likelihood scoring, 1.37x slower in verbalizer scoring` from a lever's measurements."""
    parts = []
    for m in entry["measured"]:
        ratio = m["baseline_s"] / m["lever_s"]
        parts.append(f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower")
        parts[-1] += f" in {m['scoring']} scoring"
    return ", ".join(parts)


def _unmeasured(entry: dict[str, Any], scenario: Scenario) -> str:
    """Said where the point's scoring mode is not among those the lever was measured in."""
    mode = scenario.scoring.mode
    return "" if any(m["scoring"] == mode for m in entry["measured"]) else f" (not measured in {mode} scoring)"


def point_advice(scenario: Scenario) -> tuple[str, list[ResultWarning]]:
    """The dtype a point runs in, and every warning about what it would do on this machine: a slow dtype, a slow
    lever, an engine not checked on the device. A run records them; `recbench validate` prints them."""
    dtype, found = resolve_dtype(scenario)
    return dtype, [*found, *lever_warnings(scenario), *engine_warnings(scenario)]


def machine_advice(files: list[tuple[Path, list[ScenarioPoint]]]) -> list[str]:
    """point_advice's warnings for the files' points, each once per file and message: `recbench validate` prints
    them after the files pass."""
    lines: list[str] = []
    for path, points in files:
        for point in points:
            for warning in point_advice(point.scenario)[1]:
                line = f"{path}: {warning.message}"
                if line not in lines:
                    lines.append(line)
    return lines


@cache
def _cpu_levers() -> dict[str, Any]:
    return read_yaml(CPU_LEVERS_FILE)


def _auto_dtype(on_cpu: bool) -> str:
    if on_cpu:
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


@cache
def _cpu_dtype_slowdowns() -> dict[str, dict[str, Any]]:
    return read_yaml(CPU_DTYPES_FILE)["without_native_support"]


def declared_architecture(scenario: Scenario) -> Architecture:
    """The model's architecture without loading any weights: a preset, the scenario's own, or a checkpoint's
    config.json (InputError for a config that cannot describe a model). A GGUF file is converted first (once;
    bench.models.gguf caches the checkpoint)."""
    if scenario.model.preset:
        return get_preset(scenario.model.preset)
    if scenario.model.architecture is not None:
        return scenario.model.architecture
    folder = checkpoint_folder(scenario)
    assert folder is not None
    return read_checkpoint_architecture(folder)


def checkpoint_folder(scenario: Scenario) -> Path | None:
    """The transformers checkpoint a point loads pretrained weights from, or None for random weights: the
    scenario's folder, or the cached conversion of its GGUF file (a local one, or the one a package ships for a
    preset with `weights: packaged`)."""
    model = scenario.model
    if model.path is not None:
        return model.path
    from bench.models.gguf import packaged_gguf

    if model.gguf is not None:
        return _converted(model.gguf)
    if model.weights == "packaged":
        assert model.preset is not None
        package = packaged_weights(model.preset)
        assert package is not None  # the scenario model checks it
        return _converted(packaged_gguf(package["package"], package["file"]))
    return None


def _converted(gguf_file: Path) -> Path:
    """The cached conversion of a GGUF file; its content hash is computed once per process and file version (the
    preflight, the tokenizer and the model all ask)."""
    try:
        stat = gguf_file.stat()
    except OSError:
        stat = None  # converted_checkpoint says what is wrong with the path
    return _converted_by_version(gguf_file, stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1)


@cache
def _converted_by_version(gguf_file: Path, size: int, mtime_ns: int) -> Path:
    from bench.models.gguf import converted_checkpoint

    return converted_checkpoint(gguf_file)


def weights_source(scenario: Scenario) -> str | None:
    """Where pretrained weights come from, for the result (None for random weights)."""
    model = scenario.model
    if model.path is not None:
        return f"checkpoint folder {model.path}"
    folder = checkpoint_folder(scenario)
    if folder is None:
        return None
    digest = f"sha256 {folder.name}..., converted to float32"  # the cache folder is named by the content hash
    if model.gguf is not None:
        return f"GGUF file {model.gguf} ({digest})"
    package = packaged_weights(model.preset or "") or {}
    return f"GGUF {package.get('file')} from package {package.get('package')} ({digest}; {package.get('source')})"


# The field to change when a part of the footprint is what does not fit.
_PART_FIELD = {
    "weights": "model",
    "KV cache": "batch_size",
    "activations": "batch_size",
    "data": "workload.num_users",
    "item embeddings": "workload.num_items",
    "user state": "workload.num_users",
    "per-batch buffers": "workload.num_items",
    "runtime": "model",
}


def check_runnable(scenario: Scenario) -> None:
    """The device exists, the input paths exist, the model's config is sound, and the whole run (weights, KV
    cache, activations, data, embeddings) is estimated to fit this machine's memory (InputError otherwise)."""
    device = Device.parse(scenario.device)
    _check_input_paths(scenario)
    _check_prepack_available(scenario)
    arch = declared_architecture(scenario)
    if scenario.model.has_real_weights and scenario.max_positions_needed > arch.max_position_embeddings:
        raise InputError(
            f"max_prompt_tokens: {scenario.max_positions_needed} positions needed, but the checkpoint's "
            f"max_position_embeddings is {arch.max_position_embeddings}"
        )
    dtype, _ = resolve_dtype(scenario)
    if device.is_cuda:
        capacity, where = _cuda_capacity(device)
    else:
        capacity, where = psutil.virtual_memory().total, "this machine's RAM"
    if weights_bytes(arch, dtype=dtype) > capacity:
        need = weights_bytes(arch, dtype=dtype) / 2**30
        raise InputError(
            f"model: {scenario.model.label} needs {need:.1f} GiB for its {dtype} weights alone; "
            f"{where} has {capacity / 2**30:.1f} GiB"
        )
    footprint = run_footprint(scenario, arch, dtype=dtype, data_file_bytes=_data_file_bytes(scenario))
    if device.is_cuda:
        _check_fits(footprint, True, capacity, f"{where} has {capacity / 2**30:.1f} GiB")
    available = psutil.virtual_memory().available
    _check_fits(footprint, False, available, f"this machine has {available / 2**30:.1f} GiB of RAM free")


def _check_prepack_available(scenario: Scenario) -> None:
    if not scenario.optimize.prepack:
        return
    import torch  # not at module level: `recbench validate` checks files without importing torch

    if not torch.backends.mkldnn.is_available():
        raise InputError("optimize.prepack: this torch build has no oneDNN (torch.backends.mkldnn is unavailable)")


def _check_fits(footprint: Footprint, device: bool, capacity: int, has: str) -> None:
    need = footprint.on(device)
    if need <= capacity:
        return
    parts = {k: v for k, v in footprint.parts.items() if (k in footprint.device_parts) == device}
    largest = max(parts, key=lambda k: parts[k])
    raise InputError(
        f"{_PART_FIELD[largest]}: this run needs about {need / 2**30:.1f} GiB (an estimate: "
        f"{footprint.describe(device=device)}); {has}"
    )


def _cuda_capacity(device: Device) -> tuple[int, str]:
    import torch

    if not torch.cuda.is_available():
        raise InputError(f"device: {device} requested but CUDA is not available here")
    if device.cuda_index >= torch.cuda.device_count():
        raise InputError(f"device: {device} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    index = device.cuda_index
    return torch.cuda.get_device_properties(index).total_memory, torch.cuda.get_device_name(index)


def _data_file_bytes(scenario: Scenario) -> int:
    total = 0
    for path in (scenario.workload.path, scenario.workload.items_path):
        if path is None:
            continue
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else []
        total += sum(p.stat().st_size for p in files)
    return total


def _check_input_paths(scenario: Scenario) -> None:
    """Data and checkpoint paths exist and have the right kind, before any point runs."""
    workload = scenario.workload
    expected = [
        ("workload.path", workload.path, workload.dataset == "movielens"),
        ("workload.items_path", workload.items_path, False),
        ("model.path", scenario.model.path, True),
        ("model.gguf", scenario.model.gguf, False),
    ]
    for field, path, is_folder in expected:
        if path is None:
            continue
        if is_folder and not path.is_dir():
            raise InputError(f"{field}: {path}: {why_not_found(path, 'folder', folder=True)}")
        if not is_folder and not path.is_file():
            raise InputError(f"{field}: {path}: {why_not_found(path, 'file')}")
