"""Results as a pandas DataFrame: one row per result, the columns people filter and plot by."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.results.model import Throughput
from bench.results.reader import StoredResult, newest_per_point, read_results

if TYPE_CHECKING:
    import pandas as pd


def load_results_frame(paths: list[Path] | Path | str, *, strict: bool = False) -> pd.DataFrame:
    """Load result files (or folders of them) into a DataFrame with flattened scenario, latency
    (median/p99 per stage, seconds), throughput, memory and FLOP columns; `path` names the file. Every run is a
    row; `newest` marks the newest run of each (scenario, point, machine), the one report and plan use: filter
    on it before grouping by point, or repeated runs are averaged."""
    import pandas as pd

    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    stored = read_results(paths, strict=strict)
    newest = {id(result) for result in newest_per_point(stored)[0]}
    rows = [_row(result, newest=id(result) in newest) for result in stored]
    # No results: an empty frame that still has the key columns, so filters such as frame[frame["newest"]] work.
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(KEY_COLUMNS)).astype({"newest": bool})


KEY_COLUMNS = ("path", "newest", "scenario", "point", "machine", "created_at")


def _row(stored: StoredResult, *, newest: bool) -> dict[str, Any]:
    result = stored.result
    scenario, summary = result.scenario, result.summary
    row: dict[str, Any] = {
        "path": str(stored.path),
        "newest": newest,
        "scenario": scenario.name,
        "point": result.point.key,
        "spec_hash": result.point.spec_hash,
        "machine": result.machine,
        "created_at": result.created_at.isoformat(),
        "model": result.model.label,
        "engine": scenario.engine,
        "params": result.model.params_total,
        "weights": result.model.weights,
        "dtype": result.model.dtype,
        "device": scenario.device,
        "batch_size": scenario.batch_size,
        "max_prompt_tokens": scenario.max_prompt_tokens,
        "candidates": scenario.workload.candidates,
        "top_n": scenario.workload.top_n,
        "scoring_mode": scenario.scoring.mode,
        "prompt_tokens_mean": result.work.prompt_tokens_mean,
        "peak_rss_bytes": result.memory.measured.rss_peak,
        "cuda_peak_allocated_bytes": result.memory.measured.cuda_peak_allocated,
        "llm_achieved_flops_per_s": summary.flops.llm.achieved_flops_per_s,
        "mfu": summary.flops.llm.mfu,
        "warnings": "; ".join(w.message for w in result.warnings),
    }
    for stage, stats in summary.latency.stages.items():
        row[f"latency.{stage}.p50_s"] = stats.p50
        row[f"latency.{stage}.p99_s"] = stats.p99
    for name in Throughput.model_fields:
        value = getattr(summary.throughput, name)
        if name != "basis" and value is not None:
            row[f"throughput.{name}"] = value
    for stage, flops in summary.flops.stages.items():
        row[f"flops.{stage}.counted"] = flops.counted_flops
    return row
