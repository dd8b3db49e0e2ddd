"""Load two sets of results and pair them by (scenario name, point key).

Where several results on one side share a pair key, the newest (by `created_at`) is used and the others are
reported as superseded; points present on one side only are reported as unmatched. Nothing is dropped
without a line in the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.errors import InputError
from bench.results.reader import StoredResult, read_results

PairKey = tuple[str, str]  # (scenario name, point key)


@dataclass
class Side:
    """One side's results: the newest per pair key, and the older ones it superseded."""

    name: str  # "baseline" or "current"
    chosen: dict[PairKey, StoredResult]
    superseded: dict[PairKey, list[StoredResult]] = field(default_factory=dict)


def load_side(paths: Sequence[Path | str] | Path | str, *, name: str, strict: bool = False) -> Side:
    """Load every result under `paths` (a damaged file: a warning, or an InputError with `strict`); InputError
    when there are none."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise InputError(f"{name}: no result files or folders given")
    groups: dict[PairKey, list[StoredResult]] = {}
    for stored in read_results(paths, strict=strict):
        groups.setdefault(stored.key, []).append(stored)
    if not groups:
        raise InputError(f"{name}: {' '.join(map(str, paths))}: no result files found")
    side = Side(name=name, chosen={})
    for key, results in groups.items():
        results.sort(key=lambda r: (r.created_at, str(r.path)), reverse=True)
        side.chosen[key] = results[0]
        if len(results) > 1:
            side.superseded[key] = results[1:]
    return side


def pair_sides(baseline: Side, current: Side) -> tuple[list[PairKey], list[StoredResult], list[StoredResult]]:
    """(matched keys in current's order, baseline-only results, current-only results)."""
    matched = [key for key in sorted(current.chosen) if key in baseline.chosen]
    only_baseline = [r for key, r in sorted(baseline.chosen.items()) if key not in current.chosen]
    only_current = [r for key, r in sorted(current.chosen.items()) if key not in baseline.chosen]
    return matched, only_baseline, only_current
