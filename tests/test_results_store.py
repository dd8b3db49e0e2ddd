"""Result files: the typed model, atomic never-overwriting writes, one reader with clear errors, one iterator
with one set of skip rules, and v1 files (written by the previous release) migrated on load."""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.cli import main
from bench.core import io
from bench.core.errors import InputError
from bench.core.io import atomic_write_json
from bench.core.kinds import LoadVerdict
from bench.core.stages import Stage
from bench.results.model import SCHEMA_VERSION, Result
from bench.results.reader import iter_result_paths, load_result, read_results
from bench.results.schema import RESULT_SCHEMA_FILE, result_json_schema
from bench.results.store import write_result

V1 = Path(__file__).parent / "fixtures" / "results-v1"
V1_MACHINE = V1 / "v1-fixture-machine"
V1_PLAIN = V1_MACHINE / "20261127T234357-quickstart-default.json"
V1_LOAD = V1_MACHINE / "20261129T003900-v1-load-default.json"
V1_EARLY = V1_MACHINE / "20261129T011444-v1-early-default.json"  # written by the first release (86e0f41)
V1_COUNT = len(list(V1_MACHINE.glob("*.json")))


@pytest.fixture
def result() -> Result:
    """A real result (the previous release's quickstart run), moved to a fixed time."""
    loaded = load_result(V1_PLAIN)
    return loaded.model_copy(update={"created_at": datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)})


def renamed(result: Result, *, scenario: str | None = None, key: str | None = None, machine: str | None = None):
    data = result.model_dump(mode="json")
    if scenario:
        data["scenario"]["name"] = scenario
    if key:
        data["point"]["key"] = key
    if machine:
        data["machine"] = machine
    return Result.model_validate(data)


# ------------------------------------------------------------------------------------------------ writing


def test_atomic_write_refuses_to_overwrite(tmp_path):
    path = atomic_write_json(tmp_path / "r.json", {"a": 1})
    with pytest.raises(FileExistsError):
        atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_a_crash_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "fsync", explode)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(tmp_path / "r.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_same_name_gets_a_suffix_not_a_replacement(tmp_path, result):
    first = write_result(result, tmp_path)
    second = write_result(result, tmp_path)
    assert first != second
    assert first.parent == second.parent == tmp_path / result.machine
    assert first.name == "20261127T120000-quickstart-default.json"
    assert second.name == "20261127T120000-quickstart-default-1.json"
    assert load_result(first) == load_result(second) == result


def test_point_keys_become_safe_file_names(tmp_path, result):
    path = write_result(renamed(result, key="model=a/b c,batch_size=4"), tmp_path)
    assert path.parent == tmp_path / result.machine
    assert "/" not in path.name.removeprefix("20261127T120000-") and " " not in path.name


@pytest.mark.parametrize("machine", ["../../x", "/abs/path", "..", "a/b", ""])
def test_a_machine_that_is_a_path_is_not_a_result(result, machine):
    data = result.model_dump(mode="json")
    data["machine"] = machine
    with pytest.raises(ValueError, match="machine"):
        Result.model_validate(data)


# ------------------------------------------------------------------------------------------------ reading


def test_load_result_errors_name_the_file(tmp_path, result):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    not_result = tmp_path / "other.json"
    not_result.write_text("{}")
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    damaged = tmp_path / "damaged.json"
    data = result.model_dump(mode="json")
    del data["summary"]["throughput"]
    data["latency"]["iterations"] = "many"
    damaged.write_text(json.dumps(data))
    for path, message in [
        (bad_json, "not a JSON result"),
        (not_result, "no integer schema_version"),
        (future, "newer than this recbench"),
        (tmp_path / "absent.json", "no such result"),
        (damaged, r"damaged recbench result: latency\.iterations: .*; summary\.throughput: missing"),
    ]:
        with pytest.raises(InputError, match=message) as info:
            load_result(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_one_iterator_skips_what_is_not_a_result(tmp_path):
    shutil.copytree(V1, tmp_path / "results")
    root = tmp_path / "results"
    baseline = root / "baselines" / "v1-fixture-machine" / "main"
    baseline.mkdir(parents=True)
    shutil.copy(V1_PLAIN, baseline)
    (baseline / "manifest.json").write_text("{}")
    (root / "v1-fixture-machine" / ".x.json.tmp123.json").write_text("{")  # a write in progress
    (root / "v1-fixture-machine" / "20261129T003900-v1-load-default-loadgen" / "mlperf_log_accuracy.json").write_text(
        "[]"
    )  # an interrupted load test's leftover
    found = list(iter_result_paths([root]))
    assert sorted(p.name for p in found) == sorted(p.name for p in V1_MACHINE.glob("*.json"))
    assert [p.parent for p in iter_result_paths([baseline])] == [baseline]  # a baseline's own folder is read


def test_a_damaged_file_is_listed_with_every_other_problem(tmp_path):
    shutil.copytree(V1_MACHINE, tmp_path / "m")
    (tmp_path / "m" / "broken-a.json").write_text("{")
    (tmp_path / "m" / "broken-b.json").write_text("[]")
    with pytest.raises(InputError) as info:
        read_results([tmp_path / "m"], strict=True)
    assert len(str(info.value).splitlines()) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(read_results([tmp_path / "m"], strict=False)) == V1_COUNT
    assert sorted(Path(str(w.message).split(": ")[0].removeprefix("skipped ")).name for w in caught) == [
        "broken-a.json",
        "broken-b.json",
    ]  # one warning per damaged file, each naming it


# ------------------------------------------------------------------------------------------ v1 migration


def test_every_v1_file_migrates_to_the_current_model():
    stored = read_results([V1])
    assert len(stored) == V1_COUNT == 7
    for item in stored:
        raw = json.loads(item.path.read_text())
        assert raw["schema_version"] == 1 and item.result.schema_version == SCHEMA_VERSION
        top_n = item.result.scenario.workload.top_n
        assert item.result.quality.top_n == top_n
        assert item.result.quality.hit_rate == raw["quality"][f"hit_rate@{top_n}"]
        throughput = raw["summary"]["throughput"]["requests_per_s"]["value"]
        assert item.result.summary.throughput.requests_per_s == throughput
        assert (
            item.result.summary.latency.stages[Stage.END_TO_END].p50
            == raw["summary"]["latency"]["stages"]["end_to_end"]["p50"]
        )


def test_an_early_v1_file_marks_what_it_did_not_record():
    result = load_result(V1_EARLY)
    assert result.energy.method == "unavailable" and result.energy.joules is None
    assert result.hardware_tier is None and result.memory.setup_measured is None
    scoring = result.summary.flops.stages[Stage.SCORING]
    assert scoring.timed_batches_bytes_moved_estimate_mean is None
    assert scoring.timed_batches_flops_mean == scoring.counted_flops  # that release's own basis, said so
    assert "calibration batch" in result.summary.flops.basis


def test_a_stored_result_outlives_a_renamed_preset_and_a_tightened_rule(tmp_path):
    data = json.loads(V1_LOAD.read_text())
    data["scenario"]["model"] = {"preset": "a-preset-that-was-renamed", "architecture": None, "path": None}
    data["scenario"]["load"]["min_query_count"] = 10  # refused today for a new run
    data["created_at"] = "2026-11-29T00:39:00"  # no time zone: taken as UTC
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    result = load_result(path)
    assert result.scenario.model.preset == "a-preset-that-was-renamed"
    assert result.created_at.tzinfo is not None


def test_a_v1_load_test_keeps_its_load_section():
    result = load_result(V1_LOAD)
    assert result.load is not None and result.load.verdict == LoadVerdict.VALID
    assert result.load.probes is not None and len(result.load.probes) == 2
    assert result.latency.method == "perf_counter" and "load test" in result.latency.window
    assert result.summary.throughput.basis.startswith("load test (server)")


def test_v1_results_show_and_report(tmp_path, capsys):
    assert main(["show", str(V1)]) == 0
    out = capsys.readouterr().out
    assert "v1-load [default]" in out and "quickstart [default]" in out
    report = ["report", str(V1), "-o", str(tmp_path / "report"), "--qps", "10", "--slo-p99-ms", "500", "--no-figures"]
    assert main(report) == 0
    assert "--no-figures" in (tmp_path / "report" / "report.html").read_text()
    costs = (tmp_path / "report" / "costs.csv").read_text()
    assert "v1-likelihood" in costs and "v1-load" in costs
    assert main(["show", str(V1_LOAD)]) == 0  # a load test's batches: their mean size and the cap, not the cap
    shown = " ".join(capsys.readouterr().out.split())  # the terminal's line breaks may fall anywhere
    assert "batch 1.54 mean, up to 2 (LoadGen server)" in shown and "random weights, transformers engine" in shown
    cut_short = json.loads(V1_LOAD.read_text())
    cut_short["load"]["timed_out"] = True  # as when load.max_wall_s ends the run
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / V1_LOAD.name).write_text(json.dumps(cut_short))
    assert main(["show", str(tmp_path / "m" / V1_LOAD.name)]) == 0
    assert "ended by the wall-time bound (load.max_wall_s)" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------------------------------------- schema


def test_committed_result_schema_is_current():
    assert RESULT_SCHEMA_FILE.is_file(), "generate it: recbench schema result -o results/result.schema.json"
    assert json.loads(RESULT_SCHEMA_FILE.read_text()) == result_json_schema(), (
        "stale: rerun recbench schema result -o results/result.schema.json"
    )


def test_a_written_result_satisfies_the_schema(tmp_path, result):
    import jsonschema

    path = write_result(result, tmp_path)
    jsonschema.validate(json.loads(path.read_text()), json.loads(RESULT_SCHEMA_FILE.read_text()))
