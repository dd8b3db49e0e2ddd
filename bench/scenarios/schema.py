"""JSON Schema of scenario files, generated from the pydantic model, for editors that validate YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.scenarios.spec import Scenario

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "scenarios" / "scenario.schema.json"


def scenario_json_schema() -> dict[str, Any]:
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "recbench scenario"
    # `model: NAME` is shorthand for `model: {preset: NAME}` (converted before validation).
    schema["properties"]["model"] = {
        "anyOf": [{"type": "string", "description": "preset name"}, {"$ref": "#/$defs/ModelSpec"}]
    }
    # `extends` is resolved before validation, so the model does not list it.
    schema["properties"]["extends"] = {"type": "string", "description": "base scenario file, relative path"}
    return schema
