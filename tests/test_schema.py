"""The committed JSON Schema of scenario files is current, and the repository's scenarios satisfy it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bench.scenarios.loader import read_raw
from bench.scenarios.schema import SCHEMA_FILE, scenario_json_schema

SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"
REPO_SCENARIOS = sorted(SCENARIOS_DIR.glob("*.yaml"))


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _errors(raw: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(raw)]


def _uses_model_shorthand(path: Path) -> bool:
    return isinstance(read_raw(path).get("model"), str)


def test_schema_file_is_where_scenarios_point() -> None:
    assert SCHEMA_FILE == SCENARIOS_DIR / "scenario.schema.json"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.is_file(), "generate it: recbench schema -o scenarios/scenario.schema.json"
    assert json.loads(SCHEMA_FILE.read_text()) == scenario_json_schema(), (
        "stale: rerun recbench schema -o scenarios/scenario.schema.json"
    )


@pytest.mark.skipif(not REPO_SCENARIOS, reason="no scenarios/*.yaml in the repository")
@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in REPO_SCENARIOS],
)
def test_repo_scenario_satisfies_schema(path: Path) -> None:
    assert _errors(read_raw(path)) == []


def test_schema_accepts_model_shorthand() -> None:
    assert _errors({"name": "t", "model": "tiny-llama"}) == []


def test_schema_accepts_extends_and_sweep() -> None:
    raw = {
        "extends": "quickstart.yaml",
        "name": "t",
        "model": {"preset": "tiny-llama"},
        "sweep": {"batch_size": [1, 2], "workload.candidates": [10, 20]},
    }
    assert _errors(raw) == []


@pytest.mark.parametrize(
    ("raw", "where", "key"),
    [
        ({"name": "t", "model": {"preset": "tiny-llama"}, "colour": "red"}, "$", "colour"),
        (
            {"name": "t", "model": {"preset": "tiny-llama"}, "workload": {"canidates": 5}},
            "$.workload",
            "canidates",
        ),
    ],
    ids=["top-level", "nested"],
)
def test_unknown_key_fails_schema(raw: dict[str, Any], where: str, key: str) -> None:
    errors = _errors(raw)
    assert any(e.startswith(f"{where}: ") and repr(key) in e for e in errors), errors


def test_unknown_key_in_yaml_file_fails_schema(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "model": {"preset": "tiny-llama"}, "batch_sise": 4}))
    with pytest.raises(jsonschema.ValidationError, match="batch_sise"):
        jsonschema.validate(read_raw(path), json.loads(SCHEMA_FILE.read_text()))
