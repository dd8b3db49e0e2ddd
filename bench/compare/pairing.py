"""Load two sets of results and pair them by (scenario name, point key).

Where several results on one side share a pair key, the newest (by `created_at`) is used and the others are
reported as superseded; points present on one side only are reported as unmatched. Nothing is dropped
without a line in the output.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import InputError
from bench.results.store import load_result

PairKey = tuple[str, str]  # (scenario name, point key)


@dataclass(frozen=True)
class LoadedResult:
    path: Path
    data: dict[str, Any]
    scenario: str
    point: str
    created_at: datetime
    machine: str

    @property
    def key(self) -> PairKey:
        return (self.scenario, self.point)

    @property
    def label(self) -> str:
        return f"{self.scenario} [{self.point}]"


@dataclass
class Side:
    """One side's results: the newest per pair key, and the older ones it superseded."""

    name: str  # "baseline" or "current"
    chosen: dict[PairKey, LoadedResult]
    superseded: dict[PairKey, list[LoadedResult]] = field(default_factory=dict)


def result_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files as given; folders searched recursively for result JSON.

    Like bench.results.store.iter_result_paths, calibration caches and `baselines/` folders below a given
    folder are skipped (so `results/` does not pull in saved baselines), but a folder given inside
    `baselines/` is read: that is how a saved baseline is compared. Manifests and hidden files are skipped.
    """
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = []
            for candidate in path.rglob("*.json"):
                inner = candidate.relative_to(path).parts
                if "calibration" in inner or "baselines" in inner:
                    continue
                if candidate.name == "manifest.json" or any(part.startswith(".") for part in inner):
                    continue
                found.append(candidate)
            yield from sorted(found)
        elif path.exists():
            yield path
        else:
            raise InputError(f"{path}: no such result file or folder")


def load_for_comparison(path: Path) -> LoadedResult:
    data = load_result(path)
    try:
        scenario = data["scenario"]["name"]
        point = data["point"]["key"]
        created = datetime.fromisoformat(data["created_at"])
        machine = data.get("machine") or "unknown"
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path}: incomplete recbench result (missing {exc})") from None
    except ValueError:
        raise InputError(f"{path}: created_at {data.get('created_at')!r} is not an ISO timestamp") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return LoadedResult(
        path=path, data=data, scenario=str(scenario), point=str(point), created_at=created, machine=str(machine)
    )


def load_side(paths: Sequence[Path | str] | Path | str, *, name: str) -> Side:
    """Load every result under `paths`; InputError when there are none."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise InputError(f"{name}: no result files or folders given")
    groups: dict[PairKey, list[LoadedResult]] = {}
    for path in result_files(paths):
        loaded = load_for_comparison(path)
        groups.setdefault(loaded.key, []).append(loaded)
    if not groups:
        raise InputError(f"{name}: {' '.join(map(str, paths))}: no result files found")
    side = Side(name=name, chosen={})
    for key, results in groups.items():
        results.sort(key=lambda r: (r.created_at, str(r.path)), reverse=True)
        side.chosen[key] = results[0]
        if len(results) > 1:
            side.superseded[key] = results[1:]
    return side


def pair_sides(baseline: Side, current: Side) -> tuple[list[PairKey], list[LoadedResult], list[LoadedResult]]:
    """(matched keys in current's order, baseline-only results, current-only results)."""
    matched = [key for key in sorted(current.chosen) if key in baseline.chosen]
    only_baseline = [r for key, r in sorted(baseline.chosen.items()) if key not in current.chosen]
    only_current = [r for key, r in sorted(current.chosen.items()) if key not in baseline.chosen]
    return matched, only_baseline, only_current
