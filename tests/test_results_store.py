"""Result files: atomic, never overwritten, and clear errors for files that are not results."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bench.errors import InputError
from bench.results import store
from bench.results.store import SCHEMA_VERSION, atomic_write_json, load_result, write_result


def minimal_result(name: str = "demo", key: str = "default") -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc).isoformat(),
        "scenario": {"name": name},
        "point": {"key": key, "spec_hash": "abc"},
    }


def test_atomic_write_refuses_to_overwrite(tmp_path):
    path = atomic_write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(FileExistsError):
        atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_a_crash_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store.json, "dump", explode)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(tmp_path / "r.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_same_name_gets_a_suffix_not_a_replacement(tmp_path):
    first = write_result(minimal_result(), tmp_path, "machine-a")
    second = write_result(minimal_result(), tmp_path, "machine-a")
    assert first != second
    assert first.parent == second.parent == tmp_path / "machine-a"
    assert first.name == "20261127T120000-demo-default.json"
    assert second.name == "20261127T120000-demo-default-1.json"


def test_point_keys_become_safe_file_names(tmp_path):
    path = write_result(minimal_result(key="model=a/b c,batch_size=4"), tmp_path, "m")
    assert "/" not in path.name.removeprefix("20261127T120000-") and " " not in path.name


def test_load_result_errors_name_the_file(tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    not_result = tmp_path / "other.json"
    not_result.write_text("{}")
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    for path, message in [
        (bad_json, "not a JSON result"),
        (not_result, "no integer schema_version"),
        (future, "newer than this recbench"),
        (tmp_path / "absent.json", "no such result"),
    ]:
        with pytest.raises(InputError, match=message) as info:
            load_result(path)
        assert str(path) in str(info.value)
