"""Writing result files: `results/<machine>/<timestamp>-<scenario>-<point>.json`, atomically, never overwritten.

A file appears whole or not at all (bench.core.io), so a crash or Ctrl-C mid-sweep leaves only complete results
behind, and `--resume` can trust every file it finds.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

from bench.core.errors import InputError
from bench.core.io import atomic_write_json
from bench.core.names import check_safe_name, inside, sanitise
from bench.results.model import Result
from bench.results.reader import iter_result_paths, load_result

MAX_NAME_ATTEMPTS = 1000


def result_filename(scenario: str, point_key: str, when: datetime) -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{sanitise(scenario)}-{sanitise(point_key)}.json"


def machine_folder(results_dir: Path, machine: str) -> Path:
    """results_dir/<machine>, with `machine` checked to be a plain name that stays inside results_dir."""
    return inside(results_dir, check_safe_name(machine, what="machine"))


def write_result(result: Result, results_dir: Path) -> Path:
    """Store one result under results_dir/<machine>; a name collision gets a numeric suffix, never a
    replacement."""
    folder = machine_folder(results_dir, result.machine)
    name = result_filename(result.scenario.name, result.point.key, result.created_at)
    payload = result.model_dump(mode="json")
    candidate = folder / name
    for attempt in range(1, MAX_NAME_ATTEMPTS):
        try:
            return atomic_write_json(candidate, payload)
        except FileExistsError:
            candidate = folder / f"{name.removesuffix('.json')}-{attempt}.json"
    raise RuntimeError(f"{folder}: could not find a free file name for {name}")


def completed_spec_hashes(results_dir: Path, machine: str | None) -> set[str]:
    """Spec hashes of the points already measured on this machine, or on any machine when `machine` is None (a
    cluster: the executor, not the driver, picks the machine) (for --resume; a spec hash covers the whole
    resolved scenario, its name included). A damaged file does not count as done: its point is measured
    again, and a warning names it."""
    folder = machine_folder(results_dir, machine) if machine is not None else Path(results_dir)
    if not folder.is_dir():
        return set()
    done = set()
    for path in iter_result_paths([folder]):
        try:
            done.add(load_result(path).point.spec_hash)
        except InputError as exc:
            warnings.warn(f"{exc} (--resume measures its point again)", stacklevel=2)
    return done
