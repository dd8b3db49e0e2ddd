"""JSON Schema of result files, generated from the result model (results/result.schema.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.results.model import Result

RESULT_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "results" / "result.schema.json"


def result_json_schema() -> dict[str, Any]:
    schema = Result.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "recbench result"
    return schema
