"""Bring result files written by older recbench releases up to the current schema, one version at a time
(as asv does with its results api_version). Each step takes the raw dict of version N and returns version N+1;
the model then validates the outcome, so a step only moves and renames, it never guesses a measurement."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.core.kinds import WarningKind
from bench.hardware.environment import environment_fingerprint

Migration = Callable[[dict[str, Any]], dict[str, Any]]
NOT_RECORDED = "not recorded"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: quality figures lose their `@top_n` key suffixes (top_n becomes a field); throughput figures
    are plain numbers with their units in the field names; warnings carry a kind; the latency window is a
    field of its own instead of a note appended to the timing method."""
    out = copy.deepcopy(data)
    out["schema_version"] = 2
    _fill_early_v1(out)
    fingerprint = environment_fingerprint(out["environment"])  # v1 kept every field it is made of
    out["environment"]["fingerprint"] = {**asdict(fingerprint), "digest": fingerprint.digest}
    out["quality"] = _quality_v2(out["quality"], top_n=out["scenario"]["workload"]["top_n"])
    out["summary"]["throughput"] = {
        name: figure["value"] if isinstance(figure, dict) else figure
        for name, figure in out["summary"]["throughput"].items()
    }
    out["warnings"] = [{"kind": str(_warning_kind(text)), "message": text} for text in out.get("warnings", [])]
    load = out.get("load")
    if load is not None:  # v1 kept only LoadGen's percentiles, which count dropped queries
        load["loadgen_latency_s"] = load["latency_s"]
        if load.get("dropped"):
            load["latency_s"] = {}
    latency = out["latency"]
    method, _, window = latency["method"].partition(" (")
    latency["method"] = method
    latency["window"] = window.rstrip(")") if window else "timed batches (warm-up excluded)"
    return out


def _fill_early_v1(out: dict[str, Any]) -> None:
    """Results written before energy, hardware tiers and per-batch analytic FLOPs existed (still version 1):
    what they did not record is marked as not recorded (None, or a method "unavailable"), never invented."""
    memory = out["memory"]
    memory.setdefault("measured_window", NOT_RECORDED)
    memory.setdefault("setup_measured", None)
    memory.setdefault("analytic_basis", "estimate: largest forward (basis not recorded)")
    out.setdefault(
        "energy",
        {
            "method": "unavailable",
            "estimated": False,
            "joules": None,
            "duration_s": 0.0,
            "average_watts": None,
            "readings": [],
            "notes": ["written by a recbench that did not measure energy"],
            "window": NOT_RECORDED,
        },
    )
    out.setdefault("hardware_tier", None)
    flops = out["summary"]["flops"]
    if "basis" not in flops:
        # That release reported the calibration batch's counted FLOPs as every batch's FLOPs.
        flops["basis"] = "counted_flops (FlopCounterMode on the calibration batch), taken as every batch's FLOPs"
        for figures in flops["stages"].values():
            figures.setdefault("timed_batches_flops_mean", figures["counted_flops"])
        llm = flops["llm"]
        llm["flops_per_batch_mean"] = llm.pop("counted_flops")
        llm.setdefault("achieved_basis", "counted FLOPs of the calibration batch / mean LLM time per batch")
    for figures in flops["stages"].values():
        figures.setdefault("timed_batches_bytes_moved_estimate_mean", None)


def _quality_v2(quality: dict[str, Any], *, top_n: int) -> dict[str, Any]:
    suffix = f"@{top_n}"
    renamed = {key.removesuffix(suffix): value for key, value in quality.items()}
    renamed["top_n"] = top_n
    return renamed


_WARNING_PATTERNS = (
    (re.compile(r"^machine busy"), WarningKind.BUSY_MACHINE),
    (re.compile(r"^dtype \w+ on a CPU without native"), WarningKind.SLOW_DTYPE),
)


def _warning_kind(text: str) -> WarningKind:
    return next((kind for pattern, kind in _WARNING_PATTERNS if pattern.search(text)), WarningKind.OTHER)


# version N -> the step that turns a version-N dict into version N+1
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


def migrate(data: dict[str, Any], *, to_version: int) -> dict[str, Any]:
    """`data` (a result dict of any older version) stepped up to `to_version`; KeyError/TypeError propagate
    for a file too damaged to migrate (the reader reports them with the file's name)."""
    version = data["schema_version"]
    while version < to_version:
        data = MIGRATIONS[version](data)
        version = data["schema_version"]
    return data
