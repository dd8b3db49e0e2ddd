"""Reading the project's YAML files (scenarios, tier catalogues): the safe loader (no Python tags), a key given
twice in one mapping refused (plain YAML keeps the last silently), and every problem reported as one line that
names the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import InputError

MAX_FILE_BYTES = 4 * 2**20
# Values in the document once every alias is expanded (a scenario has tens; a large sweep thousands). PyYAML
# shares aliased objects, so a few hundred bytes of nested aliases can stand for billions of values.
MAX_EXPANDED_VALUES = 200_000


# libyaml's parser where PyYAML has it (its wheels do): the same safe construction, and bench/hardware/tiers.yaml
# read in 6 ms instead of 55 (2-core AVX2 EPYC, 2026-11-29), which every run and most commands pay at start-up.
_SafeLoaderBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(_SafeLoaderBase):  # type: ignore[misc, valid-type]
    """The safe loader, rejecting a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:  # `<<: *defaults`: merged by construct_mapping, where explicit keys win
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> Any:
    """The parsed document of `path` (None for an empty file); InputError for unreadable text, bad YAML, or a
    file or document too large to be a recbench input."""
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {size / 2**20:.1f} MiB is too large for a recbench YAML file")
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # the safe loader's constructors: no Python object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: {where}YAML syntax error: {problem}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        # Valid YAML that Python cannot hold: a list as a mapping key, a date like 2026-13-01, a 5,000-digit number.
        raise InputError(f"{path}: a value YAML allows but recbench cannot read ({type(exc).__name__})") from None
    _check_expanded_size(path, document)
    return document


def _check_expanded_size(path: Path, document: Any) -> None:
    """Count values as if every alias were written out, stopping as soon as the limit is passed (a recursive
    alias would otherwise never end)."""
    count, stack = 0, [document]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_EXPANDED_VALUES:
            raise InputError(
                f"{path}: the document expands to more than {MAX_EXPANDED_VALUES:,} values (nested YAML aliases?); "
                "refused"
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
