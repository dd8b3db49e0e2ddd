"""Bad scenario input gets one clear line per problem naming the file and the field, exit status 2, no
traceback; `recbench validate` checks every sweep point without running anything."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import psutil
import pytest
import torch
import yaml

from bench.cli import main
from bench.core.errors import InputError
from bench.models.analytic import weights_bytes
from bench.models.presets import get_preset
from bench.scenarios.loader import expand_points, validate_files

REPO_SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))

# A small valid scenario; each case below changes one thing in it.
BASE: dict[str, Any] = {
    "name": "t",
    "model": "tiny-llama",
    "workload": {"num_items": 400, "candidates": 20, "top_n": 10},
}

TINY_ARCH = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "vocab_size": 1000,
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def write(tmp_path: Path, name: str, content: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    return path


def scenario(tmp_path: Path, override: dict[str, Any], name: str = "scen.yaml") -> Path:
    return write(tmp_path, name, _merge(BASE, override))


def api_error(path: Path) -> str:
    """The message of both Python entry points (they must agree)."""
    with pytest.raises(InputError) as expanded:
        expand_points(path)
    with pytest.raises(InputError) as validated:
        validate_files([path])
    assert str(validated.value) == str(expanded.value)
    return str(expanded.value)


def cli_errors(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """Runs the CLI expecting bad input: exit 2, every stderr line `error: ...`, no traceback."""
    capsys.readouterr()
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert lines, "no error printed"
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


def assert_names(message: str, path: Path, expected: list[str]) -> None:
    assert path.name in message, message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


# (case id, change to BASE, texts the one-line message must contain: field path first)
FIELD_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "unknown-top-level-key",
        {"colour": "red"},
        ["colour: unknown key", "allowed:", "batch_size", "workload"],
    ),
    (
        "unknown-nested-key",
        {"workload": {"canidates": 5}},
        ["workload.canidates: unknown key", "allowed:", "candidates", "top_n"],
    ),
    (
        "unknown-architecture-key",
        {"model": {"architecture": {**TINY_ARCH, "hidden": 3}}},
        ["model.architecture.hidden: unknown key", "hidden_size"],
    ),
    ("batch-size-wrong-type", {"batch_size": "four"}, ["batch_size:", "integer"]),
    ("batch-size-zero", {"batch_size": 0}, ["batch_size: must be above 0, got 0"]),
    ("batch-size-huge", {"batch_size": 10**8}, ["batch_size: must be at most 4096, got 100000000"]),
    ("users-fraction", {"workload": {"num_users": 2.5}}, ["workload.num_users: must be a whole number, got 2.5"]),
    ("batch-size-true", {"batch_size": True}, ["batch_size: must be an integer, got true"]),
    ("threads-true", {"threads": True}, ["threads: must be an integer, got true"]),
    ("batch-size-quoted", {"batch_size": "4"}, ["batch_size: must be an integer, got '4' (a string: write numbers"]),
    (
        "num-items-exponent",
        {"workload": {"num_items": "2.0e3"}},
        ["workload.num_items: must be an integer, got '2.0e3'"],
    ),
    ("workload-true", {"workload": True}, ["workload: must be a mapping of fields, got true"]),
    ("batching-text", {"batching": "packed"}, ["batching: must be a mapping of fields, got 'packed'"]),
    (
        "padding-typo",
        {"batching": {"padding": "pack"}},
        ["batching.padding: must be 'longest', 'bucketed' or 'packed', got 'pack'"],
    ),
    ("load-mode-alone", {"load": {"mode": "server"}}, [".yaml: load: server mode needs exactly one of target_qps"]),
    (
        "candidates-above-num-items",
        {"workload": {"num_items": 10, "candidates": 20, "top_n": 5}},
        ["workload:", "candidates (20)", "num_items (10)"],
    ),
    (
        "top-n-above-candidates",
        {"workload": {"candidates": 5, "top_n": 10}},
        ["workload:", "top_n (10)", "candidates (5)"],
    ),
    ("unknown-preset", {"model": "gpt-9"}, ["model.preset:", "'gpt-9'", "known presets", "tiny-llama"]),
    (
        "preset-and-architecture",
        {"model": {"preset": "tiny-llama", "architecture": TINY_ARCH}},
        ["model:", "exactly one", "preset", "architecture"],
    ),
    (
        "hidden-size-not-divisible-by-heads",
        {"model": {"architecture": {**TINY_ARCH, "hidden_size": 100, "num_heads": 3, "num_kv_heads": 1}}},
        ["model.architecture:", "hidden_size (100)", "num_heads (3)"],
    ),
    ("device-tpu", {"device": "tpu"}, ["device:", "'tpu'"]),
    ("max-prompt-tokens-above-preset", {"max_prompt_tokens": 5000}, ["max_prompt_tokens: 5000", "4096"]),
    (
        "verbalizer-30-candidates",
        {"workload": {"candidates": 30}, "scoring": {"mode": "verbalizer"}},
        ["workload.candidates (30)", "verbalizer"],
    ),
    ("movielens-without-path", {"workload": {"dataset": "movielens"}}, ["workload:", "movielens", "`path`"]),
    (
        "max-iterations-below-min",
        {"repetitions": {"min_iterations": 10, "max_iterations": 5}},
        ["repetitions:", "max_iterations (5)", "min_iterations (10)"],
    ),
    ("sweep-unknown-field", {"sweep": {"colour": [1, 2]}}, ["sweep.colour:", "unknown field"]),
    (
        "sweep-unknown-nested-field",
        {"sweep": {"workload.canidates": [1, 2]}},
        ["sweep.workload.canidates:", "unknown field", "candidates"],
    ),
    ("sweep-non-list", {"sweep": {"batch_size": 4}}, ["sweep.batch_size:", "list"]),
    ("sweep-empty-list", {"sweep": {"batch_size": []}}, ["sweep.batch_size:", "non-empty list"]),
    ("sweep-invalid-point", {"sweep": {"batch_size": [1, 0]}}, ["sweep point batch_size=0: batch_size:"]),
    ("extends-not-a-string", {"extends": ["base.yaml"]}, ["extends:", "file name"]),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES])
def test_bad_field_is_one_line_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any], expected: list[str]
) -> None:
    path = scenario(tmp_path, change)

    message = api_error(path)
    assert len(message.splitlines()) == 1, message
    assert_names(message, path, expected)

    lines = cli_errors(capsys, "validate", str(path))
    assert len(lines) == 1, lines
    assert_names(lines[0], path, expected)


def test_sweep_point_error_names_only_the_bad_point(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"sweep": {"batch_size": [1, 0]}})
    message = api_error(path)
    assert "batch_size=0" in message and "batch_size=1" not in message


def test_missing_name_says_required(tmp_path: Path) -> None:
    raw = copy.deepcopy(BASE)
    del raw["name"]
    message = api_error(write(tmp_path, "scen.yaml", raw))
    assert "name: required field is missing" in message


def test_empty_file_gives_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "empty.yaml", "")
    lines = cli_errors(capsys, "validate", str(path))
    assert len(lines) == 2, lines
    assert all(path.name in line for line in lines)
    assert {line.split(": ")[2] for line in lines} == {"name", "model"}


# (case id, file content, texts the message must contain)
FILE_CASES: list[tuple[str, str, list[str]]] = [
    (
        "yaml-syntax-error",
        "name: t\nmodel: tiny-llama\nworkload:\n  candidates: 5\n top_n: 3\n",
        ["line 5:", "YAML syntax error"],
    ),
    ("top-level-list", "- name: t\n- model: tiny-llama\n", ["top level must be a mapping", "list"]),
    ("top-level-scalar", "just words\n", ["top level must be a mapping", "str"]),
    (
        "a-result-file",
        '{"schema_version": 7, "scenario": {"name": "q"}, "model": {}, "latency": {}}',
        ["a recbench result, not a scenario"],
    ),
]


@pytest.mark.parametrize(("content", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_file_is_one_line_naming_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: list[str]
) -> None:
    path = write(tmp_path, "scen.yaml", content)
    message = api_error(path)
    assert len(message.splitlines()) == 1, message
    assert_names(message, path, expected)
    lines = cli_errors(capsys, "validate", str(path))
    assert len(lines) == 1
    assert_names(lines[0], path, expected)


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yaml"
    assert_names(api_error(path), path, ["no such scenario file"])
    for command in ("validate", "run"):
        (line,) = cli_errors(capsys, command, str(path), *(["--results-dir", str(tmp_path)] * (command == "run")))
        assert_names(line, path, ["no such scenario file"])


def test_a_folder_is_named_as_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_names(api_error(tmp_path), tmp_path, ["a folder, not a scenario file", "*.yaml"])
    (line,) = cli_errors(capsys, "validate", str(tmp_path))
    assert_names(line, tmp_path, ["a folder, not a scenario file"])


def test_extends_missing_base_names_child_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    child = scenario(tmp_path, {"extends": "nothere.yaml"}, name="child.yaml")
    message = api_error(child)
    assert_names(message, child, ["extends", "nothere.yaml", "no such scenario file"])
    (line,) = cli_errors(capsys, "validate", str(child))
    assert_names(line, child, ["extends", "nothere.yaml"])
    assert str(tmp_path.resolve()) not in line.replace(str(child), "")  # the paths as the user wrote them


def test_extends_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = scenario(tmp_path, {"extends": "b.yaml"}, name="a.yaml")
    write(tmp_path, "b.yaml", {"extends": "a.yaml", "batch_size": 2})
    message = api_error(a)
    assert_names(message, a, ["extends", "cycle", "b.yaml"])
    (line,) = cli_errors(capsys, "validate", str(a))
    assert "cycle" in line


def test_every_bad_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = scenario(tmp_path, {}, name="good.yaml")
    bad1 = scenario(tmp_path, {"batch_size": 0}, name="bad1.yaml")
    bad2 = scenario(tmp_path, {"device": "tpu"}, name="bad2.yaml")
    with pytest.raises(InputError) as exc:
        validate_files([good, bad1, bad2])
    assert len(str(exc.value).splitlines()) == 2
    lines = cli_errors(capsys, "validate", str(good), str(bad1), str(bad2))
    assert len(lines) == 2
    assert "bad1.yaml" in lines[0] and "batch_size" in lines[0]
    assert "bad2.yaml" in lines[1] and "device" in lines[1]


# --- accepted input ---------------------------------------------------------------------------------------


def test_seed_must_fit_the_generators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # numpy and torch seeds are unsigned 32/64-bit: a negative seed would crash mid-run, so it is rejected here.
    for bad in (-7, 2**40):
        path = scenario(tmp_path, {"seed": bad})
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path}: seed:" in err and "Traceback" not in err
    path = scenario(tmp_path, {"seed": 2**32 - 1})
    assert main(["validate", str(path)]) == 0


def test_extends_merges_mappings_and_replaces_model(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        {
            "name": "base",
            "model": {"architecture": TINY_ARCH},
            "batch_size": 3,
            "workload": {"num_items": 321, "top_n": 4},
        },
    )
    child = write(
        tmp_path,
        "child.yaml",
        {
            "extends": "base.yaml",
            "name": "child",
            "model": {"preset": "tiny-llama"},
            "workload": {"candidates": 7},
        },
    )
    (point,) = expand_points(child)
    spec = point.scenario
    assert spec.name == "child"
    assert spec.batch_size == 3
    assert (spec.workload.num_items, spec.workload.candidates, spec.workload.top_n) == (321, 7, 4)
    # The child's model replaces the base's whole (merging would set both preset and architecture).
    assert spec.model.preset == "tiny-llama" and spec.model.architecture is None


def test_extends_path_is_relative_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/base.yaml", BASE)
    child = write(tmp_path, "sub/child.yaml", {"extends": "base.yaml", "batch_size": 2})
    monkeypatch.chdir(tmp_path)
    (point,) = expand_points(Path("sub/child.yaml"))
    assert point.scenario.batch_size == 2
    assert expand_points(child)[0].spec_hash == point.spec_hash


def test_sweep_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"sweep": {"batch_size": [1, 2], "max_prompt_tokens": [128, 256]}})
    points = expand_points(path)
    assert len(points) == 4
    assert [p.index for p in points] == [0, 1, 2, 3]
    assert len({p.key for p in points}) == 4
    assert len({p.spec_hash for p in points}) == 4
    assert {(p.scenario.batch_size, p.scenario.max_prompt_tokens) for p in points} == {
        (1, 128),
        (1, 256),
        (2, 128),
        (2, 256),
    }
    for p in points:
        assert p.values == {
            "batch_size": p.scenario.batch_size,
            "max_prompt_tokens": p.scenario.max_prompt_tokens,
        }
        assert p.key == f"batch_size={p.scenario.batch_size},max_prompt_tokens={p.scenario.max_prompt_tokens}"
        assert not p.scenario.sweep
        assert p.scenario.workload.num_items == 400  # unswept fields kept
    assert main(["validate", str(path)]) == 0
    assert f"ok {path} (4 points)" in capsys.readouterr().out


def test_sweep_of_nested_field(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"sweep": {"workload.candidates": [10, 20]}})
    assert [p.scenario.workload.candidates for p in expand_points(path)] == [10, 20]


def test_sweep_of_model_preset_with_shorthand_model(tmp_path: Path) -> None:
    path = scenario(tmp_path, {"sweep": {"model.preset": ["tiny-llama", "qwen2.5-0.5b"]}})
    assert [p.scenario.model.preset for p in expand_points(path)] == ["tiny-llama", "qwen2.5-0.5b"]


def test_cuda_device_passes_static_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"device": "cuda:1"})
    assert main(["validate", str(path)]) == 0
    assert "ok " in capsys.readouterr().out


@pytest.mark.skipif(not REPO_SCENARIOS, reason="no scenarios/*.yaml in the repository")
def test_repo_scenarios_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *map(str, REPO_SCENARIOS)]) == 0
    captured = capsys.readouterr()
    # Only machine advice on stderr (levers known to cost something here), each naming its file.
    for line in captured.err.splitlines():
        assert line.startswith("warning: ") and any(line.startswith(f"warning: {p}: ") for p in REPO_SCENARIOS)
    lines = captured.out.splitlines()
    assert len(lines) == len(REPO_SCENARIOS)
    for path, line in zip(REPO_SCENARIOS, lines, strict=True):
        count = len(expand_points(path))
        assert line == f"ok {path} ({count} point{'s' if count != 1 else ''})"


# --- checks that need this machine: `validate --here` and `run`, before anything is built -------------------


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if `run` goes past planning (a model built, a point run)."""

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("run went past planning")

    import bench.execution.jobs
    import bench.measurement.prepare

    monkeypatch.setattr(bench.execution.jobs, "run_point", forbidden)
    monkeypatch.setattr(bench.measurement.prepare, "build_random_model", forbidden)
    monkeypatch.setattr(bench.measurement.prepare, "load_checkpoint", forbidden)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.usefixtures("nothing_runs")
def test_cuda_without_cuda_rejected_here(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"device": "cuda"})
    expected = ["device:", "cuda", "CUDA is not available"]
    (line,) = cli_errors(capsys, "validate", "--here", str(path))
    assert_names(line, path, expected)
    results = tmp_path / "results"
    (line,) = cli_errors(capsys, "run", str(path), "--results-dir", str(results), "--no-progress")
    assert_names(line, path, expected)
    assert not results.exists() or not any(results.rglob("*"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_sweep_point_rejected_here(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"sweep": {"device": ["cpu", "cuda"]}})
    (line,) = cli_errors(capsys, "validate", "--here", str(path))
    assert_names(line, path, ["sweep point device=cuda: device:", "CUDA is not available"])


@pytest.mark.skipif(
    weights_bytes(get_preset("llama-3.1-70b"), dtype="float32") <= psutil.virtual_memory().total,
    reason="this machine's RAM holds llama-3.1-70b in float32",
)
@pytest.mark.usefixtures("nothing_runs")
def test_model_too_big_for_ram_rejected_before_building(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, {"model": "llama-3.1-70b", "dtype": "float32", "device": "cpu"})
    assert main(["validate", str(path)]) == 0  # static checks pass; only this machine is too small
    expected = ["model:", "llama-3.1-70b", "float32", "GiB", "RAM"]
    (line,) = cli_errors(capsys, "validate", "--here", str(path))
    assert_names(line, path, expected)
    results = tmp_path / "results"
    (line,) = cli_errors(capsys, "run", str(path), "--results-dir", str(results), "--no-progress")
    assert_names(line, path, expected)
    assert not results.exists() or not any(results.rglob("*"))


def test_a_value_quoted_back_in_a_bound_error_is_cut_short():
    from bench.core.validation import MAX_ECHOED_CHARS, bound_message

    long_value = 10**80
    message = bound_message({"type": "less_than_equal", "input": long_value, "ctx": {"le": 4096}})
    assert message is not None and message.startswith("must be at most 4096, got 1000")
    assert message.endswith("...") and len(message.split("got ")[1]) == MAX_ECHOED_CHARS
    assert bound_message({"type": "string_type", "input": 1}) is None  # other errors keep their own message
