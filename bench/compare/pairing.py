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
from bench.results.reader import StoredResult, newest_per_point, read_results

PairKey = tuple[str, str]  # (scenario name, point key)


@dataclass
class Side:
    """One side's results: the newest per pair key, and the older ones it superseded."""

    name: str  # "baseline" or "current"
    chosen: dict[PairKey, StoredResult]
    superseded: dict[PairKey, list[StoredResult]] = field(default_factory=dict)
    machines: frozenset[str] = frozenset()  # of every result read, chosen or not


def load_side(paths: Sequence[Path | str] | Path | str, *, name: str, strict: bool = False) -> Side:
    """Load every result under `paths` (a damaged file: a warning, or an InputError with `strict`); InputError
    when there are none."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise InputError(f"{name}: no result files or folders given")
    stored = read_results(paths, strict=strict)
    if not stored:
        raise InputError(f"{name}: {' '.join(map(str, paths))}: no result files found")
    # Paired by scenario and point alone: a baseline from another machine pairs with the current run.
    used, older = newest_per_point(stored, key=lambda result: result.key)
    newest = {id(result) for result in used}
    chosen = {result.key: result for result in stored if id(result) in newest}  # in the order read
    side = Side(name=name, chosen=chosen, machines=frozenset(result.machine for result in stored))
    for stale in sorted((pair[0] for pair in older), key=lambda r: (r.created_at, str(r.path)), reverse=True):
        side.superseded.setdefault(stale.key, []).append(stale)
    return side


def pair_sides(baseline: Side, current: Side) -> tuple[list[PairKey], list[StoredResult], list[StoredResult]]:
    """(matched keys in current's order, baseline-only results, current-only results)."""
    matched = [key for key in sorted(current.chosen) if key in baseline.chosen]
    only_baseline = [r for key, r in sorted(baseline.chosen.items()) if key not in current.chosen]
    only_current = [r for key, r in sorted(current.chosen.items()) if key not in baseline.chosen]
    return matched, only_baseline, only_current
