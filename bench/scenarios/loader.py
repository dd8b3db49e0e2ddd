"""Read scenario YAML files: `extends`, validation with one-line errors, and sweep expansion into points.

Each point is self-contained (a resolved Scenario without `sweep`), so a sweep can be fanned out as
independent jobs: resolved spec in, result file out.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bench.core.errors import InputError
from bench.core.io import why_not_found
from bench.core.validation import allowed_keys_hint, bound_message, error_field, submodel
from bench.core.yaml_files import read_yaml
from bench.scenarios.spec import Batching, Evaluation, Optimize, Scenario

DEFAULT_MAX_POINTS = 10_000


@dataclass(frozen=True)
class ReadOptions:
    """What reading scenario files allows beyond the safe defaults."""

    allow_extends_outside: bool = False  # `extends` may name files outside the scenario's own folder tree
    max_points: int = DEFAULT_MAX_POINTS  # a sweep grid larger than this is refused before it is expanded


DEFAULT_READ_OPTIONS = ReadOptions()


@dataclass(frozen=True)
class ScenarioPoint:
    """One runnable point of a scenario file."""

    scenario: Scenario  # resolved, `sweep` empty
    source_file: Path
    index: int  # position in the sweep grid, 0 for a single point
    values: dict[str, Any]  # the swept field paths and this point's values ({} without a sweep)

    @property
    def key(self) -> str:
        """Human-readable, filename-safe point label, e.g. `batch_size=4,max_prompt_tokens=256`."""
        return point_key(self.values)

    @property
    def where(self) -> str:
        """Prefix for messages about this point: names the sweep point, empty without a sweep."""
        return point_prefix(self.values)

    @property
    def spec_hash(self) -> str:
        """Identity of the resolved spec: two points with the same hash measure the same thing."""
        spec = self.scenario.model_dump(mode="json")
        # Fields added after results existed are left out at their default, so an unchanged scenario keeps its
        # hash and `--resume` still recognises its results.
        for path, default in FIELDS_ADDED_LATER.items():
            *parents, name = path.split(".")
            holder = spec
            for parent in parents:
                holder = holder.get(parent) or {}
            if name in holder and holder[name] == default:
                del holder[name]
        canonical = json.dumps(spec, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


FIELDS_ADDED_LATER: dict[str, Any] = {
    "batching": Batching().model_dump(mode="json"),
    "accelerator_type": None,
    "optimize": Optimize().model_dump(mode="json"),
    "optimize.prepack": False,  # after "optimize": a lever pulled before prepack existed keeps its hash
    "evaluation": Evaluation().model_dump(mode="json"),
    "model.gguf": None,
    "model.weights": "random",
    "engine": "transformers",
}


def point_key(values: dict[str, Any]) -> str:
    if not values:
        return "default"
    return ",".join(f"{path}={_compact(value)}" for path, value in values.items())


def point_prefix(values: dict[str, Any]) -> str:
    return f"sweep point {point_key(values)}: " if values else ""


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "-".join(f"{k}_{_compact(v)}" for k, v in value.items())
    return str(value).replace("/", "_").replace(" ", "")


def read_raw(path: Path, options: ReadOptions = DEFAULT_READ_OPTIONS) -> dict[str, Any]:
    """Parse one scenario file and merge the files it `extends` (relative to it) underneath it. `extends` may
    only reach files inside the first file's folder tree unless the options allow more."""
    path = Path(path)
    return _read_chain(path, root=path.resolve().parent, options=options, chain=())


def _read_chain(path: Path, *, root: Path, options: ReadOptions, chain: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path.resolve()))
        raise InputError(f"{path}: extends: cycle ({cycle})")
    if path.is_dir():
        raise InputError(f"{path}: a folder, not a scenario file (name its files, e.g. {path}/*.yaml)")
    if not path.is_file():
        raise InputError(f"{path}: {why_not_found(path, 'scenario file')}")
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    _looks_like_a_scenario(path, data)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise InputError(f"{path}: extends: must be a file name")
    base = path.parent / parent
    if not options.allow_extends_outside and root not in base.resolve().parents:
        raise InputError(
            f"{path}: extends: {parent}: outside the scenario's folder {root}; refused "
            "(--allow-extends-outside allows it)"
        )
    if not base.is_file():
        raise InputError(f"{path}: extends: {parent}: {why_not_found(base, 'scenario file')}")
    return _deep_merge(_read_chain(base, root=root, options=options, chain=(*chain, path.resolve())), data)


def _looks_like_a_scenario(path: Path, data: dict[Any, Any]) -> None:
    """A file none of whose keys is a scenario field is not a scenario: say so without echoing its content
    (it may be any YAML file, a secret included)."""
    if "schema_version" in data and "scenario" in data:
        raise InputError(f"{path}: a recbench result, not a scenario (`recbench show` reads results)")
    known = {*Scenario.model_fields, "extends"}
    if data and not any(isinstance(key, str) and key in known for key in data):
        raise InputError(f"{path}: not a recbench scenario (none of its top-level keys is a scenario field)")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "model":
            merged[key] = _deep_merge(merged[key], value)
        else:
            # `model` is replaced whole: merging a preset into an architecture would make both set.
            merged[key] = copy.deepcopy(value)
    return merged


def format_validation_error(source: Path, exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: `file: [prefix]field.path: message`."""
    lines = []
    for error in exc.errors():
        field, message = error_field(Scenario, error["loc"], error["msg"].removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            message = f"unknown key{allowed_keys_hint(Scenario, error['loc'])}"
        elif error["type"] == "missing":
            message = "required field is missing"
        else:
            message = bound_message(error) or message
        where = f"{field}: " if field else ""
        lines.append(f"{source}: {prefix}{where}{message}")
    return "\n".join(lines)


def _validate(path: Path, raw: dict[str, Any], prefix: str = "") -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(path, exc, prefix=prefix)) from None


def expand_points(path: Path, options: ReadOptions = DEFAULT_READ_OPTIONS) -> list[ScenarioPoint]:
    """Validate a scenario file and every point of its sweep grid; nothing is built or run.

    With a sweep, only the points are validated: a base value that every point overrides need not be
    valid on its own.
    """
    path = Path(path)
    raw = read_raw(path, options)
    sweep = raw.pop("sweep", None)
    if not sweep:
        return [ScenarioPoint(scenario=_validate(path, raw), source_file=path, index=0, values={})]
    if not isinstance(sweep, dict):
        raise InputError(f"{path}: sweep: must map field paths to lists of values")
    for field_path, values in sweep.items():
        _check_sweep_entry(path, field_path, values)
    count = math.prod(len(values) for values in sweep.values())
    if count > options.max_points:
        raise InputError(
            f"{path}: sweep: {count:,} points exceed the limit of {options.max_points:,} (--max-points raises it)"
        )
    if isinstance(raw.get("model"), str):
        raw["model"] = {"preset": raw["model"]}  # so that a sweep of model.preset has a mapping to set
    points = []
    for index, combo in enumerate(itertools.product(*sweep.values())):
        values = dict(zip(sweep, combo, strict=True))
        point_raw = copy.deepcopy(raw)
        for field_path, value in values.items():
            _set_path(point_raw, field_path, value)
        resolved = _validate(path, point_raw, prefix=point_prefix(values))
        points.append(ScenarioPoint(scenario=resolved, source_file=path, index=index, values=values))
    return points


def _check_sweep_entry(path: Path, field_path: Any, values: Any) -> None:
    if not isinstance(field_path, str):
        raise InputError(f"{path}: sweep: keys must be field paths such as batch_size, got {field_path!r}")
    if not isinstance(values, list) or not values:
        raise InputError(f"{path}: sweep.{field_path}: must be a non-empty list of values")
    if field_path.split(".")[0] in ("sweep", "name", "extends"):
        raise InputError(f"{path}: sweep.{field_path}: this field cannot be swept")
    model: type[BaseModel] | None = Scenario
    for part in field_path.split("."):
        if model is None:
            raise InputError(f"{path}: sweep.{field_path}: the field before {part!r} has no sub-fields")
        if part not in model.model_fields:
            allowed = ", ".join(model.model_fields)
            raise InputError(f"{path}: sweep.{field_path}: unknown field {part!r} (allowed: {allowed})")
        model = submodel(model.model_fields[part].annotation)


def _set_path(raw: dict[str, Any], field_path: str, value: Any) -> None:
    *parents, leaf = field_path.split(".")
    node = raw
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}  # a null or scalar parent: the sweep supplies the sub-field
        node = node[part]
    if isinstance(value, dict) and isinstance(node.get(leaf), dict) and field_path != "model":
        node[leaf] = _deep_merge(node[leaf], value)  # a swept mapping overrides only the keys it names
    else:
        node[leaf] = copy.deepcopy(value)


def validate_files(
    paths: list[Path], options: ReadOptions = DEFAULT_READ_OPTIONS
) -> list[tuple[Path, list[ScenarioPoint]]]:
    """Validate each file (all sweep points included); returns (file, its points) per file.

    Raises InputError carrying one line per problem across all files.
    """
    problems: list[str] = []
    files: list[tuple[Path, list[ScenarioPoint]]] = []
    for path in paths:
        try:
            files.append((Path(path), expand_points(path, options)))
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        raise InputError("\n".join(problems))
    return files
