"""Read LoadGen's mlperf_log_detail.txt: one `:::MLLOG {json}` line per logged key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

PREFIX = ":::MLLOG "
DETAIL_LOG = "mlperf_log_detail.txt"
SUMMARY_LOG = "mlperf_log_summary.txt"


def parse_detail_log(text: str) -> dict[str, Any]:
    """key -> value for every MLLOG line (a repeated key keeps its last value). LoadGen's errors and warnings
    are gathered under `errors` and `warnings` (lists of "key: value"); other lines are ignored."""
    values: dict[str, Any] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for line in text.splitlines():
        start = line.find(PREFIX)
        if start < 0:
            continue
        try:
            entry = json.loads(line[start + len(PREFIX) :])
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        key = entry.get("key")
        if not isinstance(key, str):
            continue
        values[key] = entry.get("value")
        metadata = entry.get("metadata") or {}
        if metadata.get("is_error"):
            errors.append(f"{key}: {entry.get('value')}")
        elif metadata.get("is_warning"):
            warnings.append(f"{key}: {entry.get('value')}")
    values["errors"] = errors
    values["warnings"] = warnings
    return values


def read_detail_log(folder: Path) -> dict[str, Any]:
    return parse_detail_log((Path(folder) / DETAIL_LOG).read_text(encoding="utf-8", errors="replace"))


def latency_percentiles_s(log: dict[str, Any], kind: str = "") -> dict[str, float]:
    """LoadGen's latency percentiles (ns in the log) in seconds, as p50, p90, p95, p97, p99, p99.9, plus
    mean, min and max; absent keys are left out. `kind` "first_token_" reads the time-to-first-token figures
    of a token-latency run instead of the query latencies."""
    pattern = re.compile(rf"^result_{kind}(\d+\.\d+)_percentile_latency_ns$")
    figures: dict[str, float] = {}
    for key, value in log.items():
        match = pattern.match(key)
        if match and value is not None:
            figures["p" + f"{float(match.group(1)):g}"] = value / 1e9
    for name in ("mean", "min", "max"):
        value = log.get(f"result_{kind}{name}_latency_ns")
        if value is not None:
            figures[name] = value / 1e9
    return figures


def time_per_output_token_s(log: dict[str, Any]) -> dict[str, float]:
    """Percentiles of LoadGen's time per output token (token-latency runs), in seconds."""
    pattern = re.compile(r"^result_time_per_output_token_(\d+\.\d+)_percentile_ns$")
    return {
        "p" + f"{float(match.group(1)):g}": value / 1e9
        for key, value in log.items()
        if (match := pattern.match(key)) and value is not None
    }
