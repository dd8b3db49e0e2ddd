"""Results as a pandas DataFrame: one row per result, the columns people filter and plot by."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.results.store import iter_result_paths, load_result


def load_results_frame(paths: list[Path] | Path) -> pd.DataFrame:
    """Load result files (or folders of them) into a DataFrame with flattened scenario, latency
    (median/p99 per stage, seconds), throughput, memory and FLOP columns; `path` names the file."""
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    rows = [_row(load_result(path), path) for path in iter_result_paths(paths)]
    return pd.DataFrame(rows)


def _row(result: dict[str, Any], path: Path) -> dict[str, Any]:
    scenario, summary = result["scenario"], result["summary"]
    row: dict[str, Any] = {
        "path": str(path),
        "scenario": scenario["name"],
        "point": result["point"]["key"],
        "spec_hash": result["point"]["spec_hash"],
        "machine": result["machine"],
        "created_at": result["created_at"],
        "model": result["model"]["label"],
        "params": result["model"]["params_total"],
        "weights": result["model"]["weights"],
        "dtype": result["model"]["dtype"],
        "device": scenario["device"],
        "batch_size": scenario["batch_size"],
        "max_prompt_tokens": scenario["max_prompt_tokens"],
        "candidates": scenario["workload"]["candidates"],
        "top_n": scenario["workload"]["top_n"],
        "scoring_mode": scenario["scoring"]["mode"],
        "prompt_tokens_mean": result["work"]["prompt_tokens_mean"],
        "peak_rss_bytes": result["memory"]["measured"]["rss_peak"],
        "cuda_peak_allocated_bytes": result["memory"]["measured"].get("cuda_peak_allocated"),
        "llm_achieved_flops_per_s": summary["flops"]["llm"]["achieved_flops_per_s"],
        "mfu": summary["flops"]["llm"].get("mfu"),
    }
    for stage, stats in summary["latency"]["stages"].items():
        row[f"latency.{stage}.p50_s"] = stats["p50"]
        row[f"latency.{stage}.p99_s"] = stats["p99"]
    for name, figure in summary["throughput"].items():
        if isinstance(figure, dict):
            row[f"throughput.{name}"] = figure["value"]
    for stage, flops in summary["flops"]["stages"].items():
        row[f"flops.{stage}.counted"] = flops["counted_flops"]
    return row
