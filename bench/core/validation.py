"""Helpers that turn pydantic validation errors into the project's one-line messages (scenarios, tiers)."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

# For a number written as text in a scenario or tiers file. YAML 1.1 (PyYAML) reads an exponent as a number only
# with a dot and a signed exponent: 1.0e+3, 1.0e-3 (1e3 and 1.0e3 stay text).
NUMBER_AS_TEXT_HINT = "a string: write numbers unquoted, and exponents with a dot and a sign, e.g. 1.0e+3, 1.0e-3"


def submodel(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Workload` or `Architecture | None`."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model a location leads to (`("workload",)` -> Workload); None where it does not lead to one."""
    model: type[BaseModel] | None = root
    for part in loc:
        field = model.model_fields.get(str(part)) if model else None
        model = submodel(field.annotation) if field else None
    return model


def allowed_keys_hint(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """` (allowed: a, b, c)`: the keys allowed where the unknown key at `loc` was found."""
    model = model_at(root, loc[:-1])
    return f" (allowed: {', '.join(model.model_fields)})" if model else ""


def error_field(root: type[BaseModel], loc: tuple[Any, ...], message: str) -> tuple[str, str]:
    """(dotted field, message) for an error: a model-level check that names its field first (`num_users: must
    be ...` at `workload`) is reported at that field (`workload.num_users`), as a field's own check is."""
    field = ".".join(str(part) for part in loc)
    name, separator, rest = message.partition(": ")
    if not separator:
        return field, message
    if loc and name == str(loc[-1]):  # `load: ...` raised at `load`
        return field, rest
    model = model_at(root, loc)
    if model is not None and name in model.model_fields:
        return (f"{field}.{name}" if field else name), rest
    return field, message


# pydantic's error types for a number outside its bounds or of the wrong kind, in the project's words (the value
# given is named; a bound is named by the ctx key pydantic fills in).
_BOUNDS = {
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be below"),
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be above"),
}
MAX_ECHOED_CHARS = 40  # a value given is quoted back only as far as this


def bound_message(error: Mapping[str, Any]) -> str | None:
    """`must be at most 4096, got 100000000` for a bound error; `must be a whole number, got 2.5` for a fraction
    where an integer is expected; `must be 'sdpa' or 'eager', got 'flash'` for a value outside a fixed set; `must be
    a mapping of fields` where a section got a plain value; None for any other error (its own message stands)."""
    given = repr(error.get("input"))
    if len(given) > MAX_ECHOED_CHARS:
        given = given[: MAX_ECHOED_CHARS - 3] + "..."
    kind = error.get("type")
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        bound = (error.get("ctx") or {}).get(key)
        return f"{words} {bound}, got {given}" if bound is not None else None
    if kind == "int_from_float":
        return f"must be a whole number, got {given}"
    if kind == "literal_error" and (error.get("ctx") or {}).get("expected"):
        return f"must be {error['ctx']['expected']}, got {given}"
    if kind in ("model_type", "dict_type"):  # pydantic would name its class: `instance of Batching`
        return f"must be a mapping of fields, got {given}"
    return None
