"""Names that become path components (machine, scenario, baseline) follow one pattern, and every path built
from them is checked to stay inside the folder it is meant for."""

from __future__ import annotations

import re
from pathlib import Path

from bench.core.errors import InputError

SAFE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.=,-]{0,119}$"
_SAFE_NAME = re.compile(SAFE_NAME_PATTERN)
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9_.=,-]+")
SAFE_NAME_RULE = "letters, digits, '.', '_', '-', '=' and ',', starting with a letter or digit, at most 120 characters"


def is_safe_name(value: object) -> bool:
    return isinstance(value, str) and bool(_SAFE_NAME.match(value))


def check_safe_name(value: object, *, what: str) -> str:
    """`value` unchanged, or InputError naming `what` (e.g. "--name", "result machine")."""
    if not is_safe_name(value):
        raise InputError(f"{what}: {str(value)[:80]!r} is not a safe name ({SAFE_NAME_RULE})")
    return str(value)


def sanitise(value: str, *, limit: int = 120) -> str:
    """A file-name-safe rendering of free text (a point key such as `model=a/b c`): unsafe runs become `_`."""
    text = _UNSAFE_CHARACTERS.sub("_", value)[:limit].lstrip("._-=,")
    return text or "_"


def inside(base: Path, *parts: str) -> Path:
    """base / parts, refused (InputError) unless the resolved path stays inside base."""
    joined = Path(base).joinpath(*parts)
    root, candidate = Path(base).resolve(), joined.resolve()
    if candidate != root and root not in candidate.parents:
        raise InputError(f"{joined}: outside {base}; refused")
    return joined
