"""Result files: `results/<machine>/<timestamp>-<scenario>-<point>.json`, written atomically, never overwritten.

A file appears whole or not at all (temp file in the same folder, fsync, then a hard link to the final
name, which fails rather than replace an existing file), so a crash or Ctrl-C mid-sweep leaves only
complete results behind, and `--resume` can trust every file it finds.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.errors import InputError

SCHEMA_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,-]+")


def atomic_write_json(path: Path, payload: Any, *, overwrite: bool = False) -> Path:
    """Write JSON so that readers see either nothing or the whole file. Without `overwrite`, an existing
    file is never replaced: FileExistsError is raised instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1, sort_keys=False, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # atomic, and refuses to replace an existing file
            os.unlink(tmp_name)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def result_filename(scenario: str, point_key: str, when: datetime) -> str:
    stamp = when.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{_UNSAFE.sub('_', scenario)}-{_UNSAFE.sub('_', point_key)[:120]}.json"


def write_result(result: dict[str, Any], results_dir: Path, machine: str) -> Path:
    """Store one result under results_dir/machine; a name collision gets a numeric suffix, never a
    replacement."""
    when = datetime.fromisoformat(result["created_at"])
    name = result_filename(result["scenario"]["name"], result["point"]["key"], when)
    folder = results_dir / machine
    candidate = folder / name
    for attempt in range(1, 1000):
        try:
            return atomic_write_json(candidate, result)
        except FileExistsError:
            candidate = folder / f"{name.removesuffix('.json')}-{attempt}.json"
    raise RuntimeError(f"{folder}: could not find a free file name for {name}")


def load_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such result file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON result file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a JSON result file (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise InputError(f"{path}: not a recbench result (no integer schema_version)")
    if data["schema_version"] > SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {data['schema_version']} is newer than this recbench "
            f"understands ({SCHEMA_VERSION}); upgrade recbench"
        )
    return data


def iter_result_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders are searched recursively for result JSON. Below a given folder, calibration
    caches, saved baselines and manifests are skipped (pass a baseline's own folder to read it)."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*.json")
                if not {"calibration", "baselines"} & set(p.relative_to(path).parts[:-1]) and p.name != "manifest.json"
            )
        elif path.exists():
            yield path
        else:
            raise InputError(f"{path}: no such result file or folder")


def completed_spec_hashes(results_dir: Path, machine: str, scenario: str) -> set[str]:
    """Spec hashes of the points of `scenario` already measured on this machine (for --resume)."""
    folder = results_dir / machine
    if not folder.is_dir():
        return set()
    done = set()
    for path in folder.glob(f"*-{_UNSAFE.sub('_', scenario)}-*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged file does not count as done: the point is measured again
        if not isinstance(data, dict) or not isinstance(data.get("scenario"), dict):
            continue
        if data["scenario"].get("name") == scenario and isinstance(data.get("point"), dict):
            done.add(data["point"].get("spec_hash"))
    return done
