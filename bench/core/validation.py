"""Helpers that turn pydantic validation errors into the project's one-line messages (scenarios, tiers)."""

from __future__ import annotations

import typing
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


def allowed_keys_hint(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """` (allowed: a, b, c)`: the keys allowed where the unknown key at `loc` was found."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model else None
        model = submodel(field.annotation) if field else None
    return f" (allowed: {', '.join(model.model_fields)})" if model else ""
