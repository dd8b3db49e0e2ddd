"""Reading result files: one loader that returns the typed model (migrating older versions), and one iterator
over files and folders with one set of rules for what is not a result."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from bench.core.errors import InputError
from bench.results.migrations import migrate
from bench.results.model import SCHEMA_VERSION, Result
from bench.scenarios.spec import STORED, scenario_changes

# A result is tens to a few hundred kB; anything far larger is not one (and is not read into memory).
MAX_RESULT_BYTES = 64 * 2**20
# Folders below a given folder that hold something other than results.
CALIBRATION_DIR = "calibration"
BASELINES_DIR = "baselines"
LOADGEN_DIR_SUFFIX = "-loadgen"
MANIFEST = "manifest.json"
SCHEMA_SUFFIX = ".schema.json"


@dataclass(frozen=True)
class StoredResult:
    """A result and the file it was read from."""

    path: Path
    result: Result

    @property
    def key(self) -> tuple[str, str]:
        """(scenario name, point key): what pairs a result with its baseline."""
        return (self.result.scenario.name, self.result.point.key)

    @property
    def label(self) -> str:
        return self.result.label

    @property
    def created_at(self) -> datetime:
        return self.result.created_at

    @property
    def machine(self) -> str:
        return self.result.machine


def load_result(path: Path | str) -> Result:
    """The result in `path`, migrated to the current schema; InputError (naming the file) otherwise."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("schema_version"), int):
        raise InputError(f"{path}: not a recbench result (no integer schema_version)")
    version = data["schema_version"]
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {version} is newer than this recbench understands ({SCHEMA_VERSION}); "
            "upgrade recbench"
        )
    if version < 1:
        raise InputError(f"{path}: schema_version {version} is not a recbench result version")
    try:
        data = migrate(data, to_version=SCHEMA_VERSION)
    except KeyError as exc:
        raise InputError(f"{path}: damaged recbench result: {exc.args[0]}: missing") from None
    except (TypeError, AttributeError) as exc:
        raise InputError(f"{path}: damaged recbench result (schema_version {version}): {exc}") from None
    try:
        return Result.model_validate(data, context={STORED: True})
    except ValidationError as exc:
        raise InputError(f"{path}: damaged recbench result: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Every problem, each as `field.path: message`, joined on one line."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = "missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        # A check across sections (no location of its own) names its fields in the message.
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _read_json(path: Path) -> object:
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise InputError(f"{path}: {size / 2**20:.0f} MiB is too large for a recbench result")
        text = path.read_bytes().decode("utf-8")
        return json.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: no such result file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a result file") from None
    except PermissionError:
        raise InputError(f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON result file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a JSON result file (line {exc.lineno}: {exc.msg})") from None


def is_result_candidate(relative: Path) -> bool:
    """Whether a file found below a given folder (path relative to it) may be a result: JSON, not hidden
    (temporary files, saves in progress), not a manifest or a JSON Schema (results/result.schema.json), and not
    inside a calibration cache, a LoadGen log folder or the saved baselines (pass a baseline's own folder to read
    it)."""
    parts = relative.parts
    folders = parts[:-1]
    if relative.suffix != ".json" or relative.name == MANIFEST or relative.name.endswith(SCHEMA_SUFFIX):
        return False
    if any(part.startswith(".") for part in parts):
        return False
    return not any(
        folder in (CALIBRATION_DIR, BASELINES_DIR) or folder.endswith(LOADGEN_DIR_SUFFIX) for folder in folders
    )


def iter_result_paths(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files as given; folders searched recursively, keeping what is_result_candidate allows."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = (p for p in path.rglob("*.json") if p.is_file())
            yield from sorted(p for p in found if is_result_candidate(p.relative_to(path)))
        elif path.exists():
            yield path
        else:
            raise InputError(f"{path}: no such result file or folder")


def read_results(paths: Iterable[Path | str], *, strict: bool = False) -> list[StoredResult]:
    """Every result under `paths`. A damaged file gets a warning naming it and the others are read; with
    `strict` it is an InputError instead. Either way every damaged file is listed (one line each), not just
    the first."""
    stored: list[StoredResult] = []
    problems: list[str] = []
    for path in iter_result_paths(paths):
        try:
            stored.append(StoredResult(path, load_result(path)))
        except InputError as exc:
            problems.append(str(exc))
    if problems and strict:
        raise InputError("\n".join(problems))
    for problem in problems:
        warnings.warn(f"skipped {problem}", stacklevel=2)
    return stored


def point_and_machine(stored: StoredResult) -> tuple[str, str, str]:
    """(scenario, point, machine): what repeated runs of one point on one machine share."""
    return (*stored.key, stored.machine)


def newest_per_point(
    stored: list[StoredResult], key: Callable[[StoredResult], Hashable] = point_and_machine
) -> tuple[list[StoredResult], list[tuple[StoredResult, StoredResult]]]:
    """The newest result of each `key` (by default scenario, point and machine), and (older result, the one used)
    for the rest: repeated runs of one point are told apart, never silently averaged or drawn twice."""
    newest: dict[Hashable, StoredResult] = {}
    for item in sorted(stored, key=lambda s: (s.created_at, str(s.path)), reverse=True):
        newest.setdefault(key(item), item)
    used = list(newest.values())
    older = [(item, newest[key(item)]) for item in stored if item not in used]
    return used, older


def scenario_edit(older: StoredResult, newer: StoredResult) -> str | None:
    """What the newer run of a point changed in its scenario (`engine: native -> transformers`), or None for a plain
    re-run: a point is its scenario's name and sweep values, so an edited or copied file with the same name
    measures a new configuration under the old point's name."""
    if older.result.point.spec_hash == newer.result.point.spec_hash:
        return None
    return "; ".join(scenario_changes(older.result.scenario, newer.result.scenario)) or "other fields"


def read_newest(
    paths: Sequence[Path | str], *, strict: bool = False
) -> tuple[list[StoredResult], list[tuple[StoredResult, StoredResult]]]:
    """newest_per_point over every result under `paths`; InputError when there is none."""
    used, older = newest_per_point(read_results(paths, strict=strict))
    if not used:
        raise InputError(f"{' '.join(map(str, paths)) or '(nothing given)'}: no result files found")
    return used, older
