"""Hostile input, bounded resources, interrupted and damaged runs: each case gets one clear line (exit 2) or a
clean stop (exit 130), and results already measured are never lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from bench import runner
from bench.cli import main
from bench.core.errors import InputError
from bench.execution import jobs
from bench.measurement.loadtest import unique_folder
from bench.results.reader import LOADGEN_DIR_SUFFIX, load_result
from tests.conftest import tiny_scenario_dict

REPO = Path(__file__).resolve().parents[1]
V1_PLAIN = REPO / "tests" / "fixtures" / "results-v1" / "v1-fixture-machine" / "20261127T234357-quickstart-default.json"


def errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return [line for line in captured.err.splitlines() if line.startswith("error:")]


def forbid_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("a point ran")

    monkeypatch.setattr(jobs, "run_point", forbidden)


# ------------------------------------------------------------------------------------------------- security


@pytest.mark.parametrize("machine", ["../../../escaped", "/tmp/absolute-machine"])
def test_a_result_whose_machine_is_a_path_cannot_place_a_baseline(tmp_path, capsys, machine):
    victim = tmp_path / "escaped" / "main"
    victim.mkdir(parents=True)
    (victim / "keep.txt").write_text("still here")
    data = json.loads(V1_PLAIN.read_text())
    data["machine"] = machine
    crafted = tmp_path / "in" / "crafted.json"
    crafted.parent.mkdir()
    crafted.write_text(json.dumps(data))
    results_dir = tmp_path / "a" / "b" / "results"
    args = ["baseline", "save", str(crafted), "--name", "main", "--results-dir", str(results_dir), "--force"]
    assert main(args) == 2
    (line,) = errors(capsys)
    assert "no result files found" in line
    assert (victim / "keep.txt").read_text() == "still here"
    assert not (tmp_path / "a" / "b" / "results").exists()
    assert main([*args, "--strict"]) == 2
    assert "machine" in errors(capsys)[0]


def test_extends_outside_the_scenario_folder_is_refused_and_never_echoed(tmp_path, capsys):
    secret = tmp_path / "secret.yaml"
    secret.write_text("api_password: hunter2\ndb_host: internal.example\n")
    folder = tmp_path / "scenarios"
    folder.mkdir()
    scenario = folder / "s.yaml"
    scenario.write_text(yaml.safe_dump({**tiny_scenario_dict("s"), "extends": "../secret.yaml"}))
    assert main(["validate", str(scenario)]) == 2
    (line,) = errors(capsys)
    assert "extends: ../secret.yaml: outside the scenario's folder" in line and "--allow-extends-outside" in line
    # Allowed outside, the file is still not a scenario: said without a word of its content.
    assert main(["validate", str(scenario), "--allow-extends-outside"]) == 2
    (line,) = errors(capsys)
    assert "not a recbench scenario" in line
    assert "hunter2" not in line and "api_password" not in line and "internal" not in line


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path, capsys):
    levels = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 10):
        levels.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("name: bomb\nmodel: tiny-llama\nx-anchors:\n" + textwrap.indent("\n".join(levels), "  ")
                    + "\nsweep:\n  batch_size: *a9\n")  # fmt: skip
    assert bomb.stat().st_size < 1000
    begin = time.perf_counter()
    assert main(["validate", str(bomb)]) == 2
    assert time.perf_counter() - begin < 30  # a bounded walk, not 9^10 values
    (line,) = errors(capsys)
    assert "expands to more than" in line and str(bomb) in line


def test_yaml_merge_keys_work_and_values_python_cannot_hold_are_one_line_errors(tmp_path, capsys):
    from bench.core.yaml_files import read_yaml

    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {a: 1, b: 2}\nchild:\n  <<: *base\n  b: 3\n")
    assert read_yaml(merged)["child"] == {"a": 1, "b": 3}
    duplicated = tmp_path / "duplicated.yaml"
    duplicated.write_text("child:\n  b: 1\n  b: 3\n")
    with pytest.raises(InputError, match=r"line 3: YAML syntax error: duplicate key 'b'"):
        read_yaml(duplicated)
    for name, text in [("key", "? [1, 2]\n: x\n"), ("date", "when: 2026-13-01\n"), ("digits", f"n: {'9' * 5000}\n")]:
        bad = tmp_path / f"{name}.yaml"
        bad.write_text(text)
        assert main(["validate", str(bad)]) == 2
        (line,) = errors(capsys)
        assert line.startswith(f"error: {bad}: a value YAML allows but recbench cannot read (") and "9999" not in line


def test_a_sweep_grid_is_counted_before_it_is_expanded(tmp_path, capsys, write_scenario):
    scenario = write_scenario(
        tiny_scenario_dict(
            "grid",
            sweep={
                "batch_size": list(range(1, 101)),
                "seed": list(range(100)),
                "max_prompt_tokens": list(range(200, 300)),
            },
        )
    )
    assert main(["validate", str(scenario)]) == 2
    (line,) = errors(capsys)
    assert "1,000,000 points exceed the limit of 10,000 (--max-points raises it)" in line
    small = write_scenario(tiny_scenario_dict("small", sweep={"batch_size": [1, 2, 3]}))
    assert main(["validate", str(small), "--max-points", "2"]) == 2
    assert main(["validate", str(small), "--max-points", "3"]) == 0


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"batch_size": 10**12}, "batch_size"),
        ({"threads": 10**8}, "threads"),
        ({"scoring": {"mode": "generate", "new_tokens": 10**9}}, "scoring.new_tokens"),
        ({"workload": {"num_users": 10**9}}, "workload.num_users"),
        ({"max_prompt_tokens": 1000, "scoring": {"mode": "generate", "new_tokens": 100}}, "max_prompt_tokens"),
    ],
)
def test_every_size_has_an_upper_bound(tmp_path, capsys, write_scenario, override, field):
    scenario = write_scenario(tiny_scenario_dict("big", **override))
    assert main(["validate", str(scenario)]) == 2
    (line,) = errors(capsys)
    assert f"{field}:" in line


def test_a_run_too_big_for_this_machine_is_refused_before_it_starts(tmp_path, capsys, write_scenario, monkeypatch):
    forbid_running(monkeypatch)
    workload = {"num_users": 10_000_000, "num_items": 100_000_000}
    scenario = write_scenario(tiny_scenario_dict("huge", model="tiny-llama", workload=workload))
    assert main(["validate", str(scenario)]) == 0  # the file is fine; this machine is too small
    for command in (["validate", "--here", str(scenario)], ["run", str(scenario), "--results-dir", str(tmp_path)]):
        assert main(command) == 2
        (line,) = errors(capsys)
        assert "workload.num_items: this run needs about" in line and "GiB of RAM free" in line
        assert "item embeddings" in line and "(an estimate:" in line


def test_a_checkpoint_too_big_is_refused_from_its_config(tmp_path, capsys, write_scenario, tiny_arch):
    from bench.models.build import hf_config

    folder = tmp_path / "ckpt"
    folder.mkdir()
    huge = {"hidden_size": 65536, "intermediate_size": 262144, "num_hidden_layers": 128, "num_attention_heads": 512,
            "num_key_value_heads": 512, "head_dim": 128}  # fmt: skip
    config = {**hf_config(tiny_arch).to_dict(), **huge}
    (folder / "config.json").write_text(json.dumps(config))
    scenario = write_scenario(tiny_scenario_dict("ckpt", model={"path": str(folder)}))
    assert main(["validate", "--here", str(scenario)]) == 2
    (line,) = errors(capsys)
    assert "model: checkpoint:ckpt needs" in line and "weights alone" in line


HEAVY_MODULES = ("torch", "transformers", "pandas", "matplotlib", "scipy", "mlperf_loadgen")
LIGHT_COMMANDS = [
    ["validate", "scenarios/quickstart.yaml", "scenarios/sweep-batch-seqlen.yaml"],
    ["tiers"],
    ["validate-projections"],
    ["show", "tests/fixtures/results-v1"],
    ["plan", "tests/fixtures/results-v1", "--qps", "1", "--slo-p99-ms", "1e5"],
]


def imported_heavy_modules(*commands: list[str]) -> str:
    """Run the commands one after the other in a fresh interpreter; the heavy modules loaded by then."""
    code = (
        "import json, sys, io, contextlib; from bench.cli import main\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()): assert main(args) == 0, args\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(commands)], cwd=REPO, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.splitlines()[-1]


def test_reading_commands_import_neither_torch_nor_pandas_nor_plots():
    # One interpreter for all: if none is loaded after the last command, no command loaded one.
    assert imported_heavy_modules(*LIGHT_COMMANDS) == "[]"


# Buffered output, as a terminal-less run has it: PYTHONUNBUFFERED (set on some machines) would hide a missing flush.
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def recbench_process(code: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=BUFFERED,
                          **kwargs)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "status"),
    [(["tiers"], 0), (["validate", "scenarios/quickstart.yaml"], 0), (["validate", "no-such-file.yaml"], 2)],
)
def test_the_command_skips_teardown_but_keeps_its_status_output_and_exit_handlers(args, status):
    done = recbench_process(
        "import atexit, sys; from bench.cli import console_main\n"
        "atexit.register(lambda: print('exit handler ran', file=sys.stderr))\n"
        f"sys.argv = ['recbench', *{args!r}]; console_main()"
    )
    assert done.returncode == status and done.stderr.splitlines()[-1] == "exit handler ran"
    expected = recbench_process(f"import sys; from bench.cli import main; sys.exit(main({args!r}))")
    assert done.stdout == expected.stdout and expected.returncode == status
    assert done.stderr.splitlines()[:-1] == expected.stderr.splitlines()


def test_the_command_flushes_c_output_and_ends_quietly_with_stdout_closed():
    with_c_output = recbench_process(
        "import ctypes, sys; from bench.cli import console_main\n"
        "ctypes.CDLL(None).printf(b'from C\\n')\n"  # held in C's stdio buffer: stdout is a pipe
        "sys.argv = ['recbench', 'tiers']; console_main()"
    )
    assert with_c_output.returncode == 0 and "from C" in with_c_output.stdout
    closed = recbench_process(
        "import os, sys; from bench.cli import console_main\n"
        "os.close(1); sys.stdout = None\n"  # as `recbench ... >&-` starts
        "sys.argv = ['recbench', 'validate', 'scenarios/quickstart.yaml']; console_main()"
    )
    assert closed.returncode == 0 and "Traceback" not in closed.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_one_line_not_a_traceback(capsys):
    from bench.core.shutdown import EXIT_FLUSH_FAILED, status_of

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "bench.cli", "validate", "scenarios/quickstart.yaml"], cwd=REPO,
                              stdout=full, stderr=subprocess.PIPE, text=True, env=BUFFERED)  # fmt: skip
    assert done.returncode == EXIT_FLUSH_FAILED
    assert done.stderr.splitlines() == ["error: cannot write standard output: No space left on device"]

    def reader_gone() -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def report_file_full() -> int:
        raise OSError(28, "No space left on device", "reports/r/report.md")

    assert status_of(reader_gone) == EXIT_FLUSH_FAILED and capsys.readouterr().err == ""
    assert status_of(report_file_full) == 1
    assert capsys.readouterr().err == "error: cannot write reports/r/report.md: No space left on device\n"
    assert status_of(lambda: 2) == 2


def test_a_table_whose_reader_went_away_ends_quietly_with_the_flush_status():
    """`recbench tiers | head -1`: rich draws the table and meets the closed pipe; the command ends as any output
    it cannot write does, not with rich's status 1, and without a traceback."""
    from bench.core.shutdown import EXIT_FLUSH_FAILED

    command = subprocess.Popen([sys.executable, "-m", "bench.cli", "tiers"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    command.stdout.close()  # before it has written anything: its first write meets a closed pipe
    stderr = command.stderr.read()
    assert command.wait(timeout=60) == EXIT_FLUSH_FAILED and stderr == ""


@pytest.mark.benchmark_run  # a run imports torch: seconds, so with the benchmarks (make bench)
def test_a_run_imports_neither_pandas_nor_plots_nor_loadgen(tmp_path):
    run = ["run", "scenarios/quickstart.yaml", "--results-dir", str(tmp_path), "--no-progress"]
    # The quickstart runs on the native engine: not even transformers (whose model classes bring scipy).
    assert imported_heavy_modules(run) == str(["torch"])


# ---------------------------------------------------------------------------------------- interrupted runs


def test_ctrl_c_during_start_up_prints_no_traceback(monkeypatch, capsys):
    import bench.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench.cli, "build_parser", interrupted)
    assert main(["show", "x"]) == 130
    captured = capsys.readouterr()
    assert captured.err.startswith("interrupted:") and "Traceback" not in captured.err


def _run_until(command: list[str], ready: callable, *, timeout: float = 120) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "never got ready"
        time.sleep(0.2)
    return process


LOADGEN_CHILD = """
import sys, time
from pathlib import Path
from bench.core.interrupts import EXIT_INTERRUPTED, stop_on_signals
from bench.load.run import run_loadgen
from bench.scenarios.spec import Load

outdir = Path(sys.argv[1])
load = Load(mode="server", target_qps=250, min_duration_s=2, max_wall_s=30)
with stop_on_signals():
    (outdir / "started").write_text("")
    try:
        run_loadgen(load, lambda users: time.sleep(0.002), total_samples=32, outdir=outdir, target_qps=250)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
sys.exit(0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2], ids=["once: LoadGen ends its run", "twice: quit at once"])
def test_ctrl_c_during_a_load_test_stops_loadgen_cleanly(tmp_path, signals):
    # A stand-in system under LoadGen in a child process; SIGINT arrives while LoadGen calls back into Python
    # from the main thread (an exception there unwound through LoadGen's C++ and crashed the process).
    process = _run_until(
        [sys.executable, "-c", LOADGEN_CHILD, str(tmp_path)], lambda: (tmp_path / "started").exists(), timeout=60
    )
    time.sleep(0.5)
    for _ in range(signals):
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted: dropping the load test's queries" in err
    if signals == 2:
        assert "interrupted again: quitting now" in err
    else:
        assert (
            not (tmp_path / "mlperf_log_trace.json").exists() and not (tmp_path / "mlperf_log_accuracy.json").exists()
        )


def test_sigterm_stops_a_run_like_ctrl_c_and_keeps_finished_points(tmp_path, write_scenario, monkeypatch, capsys):
    real_run_point = jobs.run_point

    def terminated_during_the_second(point, **kwargs):
        if point.index == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would; the handler stops the run here
        return real_run_point(point, **kwargs)

    monkeypatch.setattr(jobs, "run_point", terminated_during_the_second)
    scenario = write_scenario(tiny_scenario_dict("term", sweep={"batch_size": [1, 2, 3]}))
    results = tmp_path / "results"
    assert main(["run", str(scenario), "--results-dir", str(results), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted: results written so far are kept; rerun with --resume" in err and "Traceback" not in err
    assert len([p for p in results.rglob("*.json") if "calibration" not in p.parts]) == 1
    assert signal.getsignal(signal.SIGTERM) is not None  # main put the previous handler back


# --------------------------------------------------------------------------------------------- damaged folders


@pytest.fixture
def results_with_a_damaged_file(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "v1-fixture-machine"
    folder.mkdir(parents=True)
    (folder / V1_PLAIN.name).write_bytes(V1_PLAIN.read_bytes())
    (folder / "20261128T000000-broken-default.json").write_text('{"schema_version": 2, "scenario": ')
    truncated = json.loads(V1_PLAIN.read_text())
    del truncated["summary"]
    (folder / "20261128T000001-nosummary-default.json").write_text(json.dumps(truncated))
    # Samples no measurement makes: every statistic downstream is computed from them.
    for second, (name, damage) in enumerate(IMPOSSIBLE_SAMPLES.items(), start=2):
        result = json.loads(V1_PLAIN.read_text())
        damage(result["latency"]["samples"])
        (folder / f"20261128T00000{second}-{name}-default.json").write_text(json.dumps(result))
    return tmp_path / "results"


IMPOSSIBLE_SAMPLES = {
    "edited": lambda samples: samples.update(end_to_end=[10 * s for s in samples["end_to_end"]]),
    "nobatches": lambda samples: samples.update(end_to_end=[]),
    "nansample": lambda samples: samples["end_to_end"].__setitem__(0, float("nan")),
    "negative": lambda samples: samples.update(preprocess=[-1.0] * len(samples["preprocess"])),
}


@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["report", "-o", "{out}", "--no-figures"],
        ["plan", "--qps", "10", "--slo-p99-ms", "1000"],
        ["compare", str(V1_PLAIN)],
        ["check", "--baseline", str(V1_PLAIN), "--fail-on", "flops:5%"],
        ["baseline", "save", "--name", "b", "--results-dir", "{out}"],
    ],
    ids=lambda c: c[0] if c[0] != "baseline" else "baseline-save",
)
def test_a_damaged_file_is_skipped_with_a_warning_and_strict_makes_it_an_error(
    results_with_a_damaged_file, tmp_path, capsys, command
):
    argv = [part.replace("{out}", str(tmp_path / "out")) for part in command]
    argv = [*argv[:1], *(["save"] if argv[0] == "baseline" else []), str(results_with_a_damaged_file), *argv[2:]] \
        if argv[0] == "baseline" else [*argv, str(results_with_a_damaged_file)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 6 and any("broken-default.json: not a JSON result" in w for w in warnings)
    # Samples edited after the summary was derived from them: the two would tell different stories.
    assert any("edited-default.json: damaged recbench result: summary.latency.stages.end_to_end.min:" in w
               for w in warnings)  # fmt: skip
    assert any("nosummary-default.json: damaged recbench result: summary: missing" in w for w in warnings)
    assert any("nobatches-default.json: damaged recbench result: latency: samples.end_to_end: 0 sample(s)" in w
               for w in warnings)  # fmt: skip
    for name, stage in (("nansample", "end_to_end"), ("negative", "preprocess")):
        assert any(f"{name}-default.json: damaged recbench result: latency: samples.{stage}: a duration" in w
                   for w in warnings)  # fmt: skip
    assert main([*argv, "--strict"]) == 2
    assert len(errors(capsys)) == 6  # every problem, one line each


def test_an_unwritable_results_folder_is_found_before_measuring(tmp_path, capsys, write_scenario, monkeypatch):
    forbid_running(monkeypatch)
    scenario = write_scenario(tiny_scenario_dict("w"))
    results = tmp_path / "results"
    results.mkdir()
    (results / "blocked").write_text("a file where the machine's folder goes")
    monkeypatch.setenv("RECBENCH_MACHINE", "blocked")
    assert main(["run", str(scenario), "--results-dir", str(results), "--no-progress"]) == 2
    (line,) = errors(capsys)
    assert f"--results-dir: {results / 'blocked'}: results cannot be written there" in line


def test_a_write_failure_after_measuring_keeps_the_result_elsewhere(tmp_path, capsys, write_scenario, monkeypatch):
    real_write = runner.write_result
    calls = []

    def full_disk_once(result, results_dir):
        calls.append(results_dir)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real_write(result, results_dir)

    monkeypatch.setattr(runner, "write_result", full_disk_once)
    monkeypatch.setattr(runner.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    scenario = write_scenario(tiny_scenario_dict("full"))
    assert main(["run", str(scenario), "--results-dir", str(tmp_path / "results"), "--no-progress"]) == 2
    (line,) = errors(capsys)
    assert "No space left on device" in line and "it was saved to" in line
    saved = Path(line.split("it was saved to ")[1].split(" instead")[0])
    assert saved.is_file() and saved.is_relative_to(tmp_path / "tmp" / runner.UNSAVED_DIR)
    assert load_result(saved).scenario.name == "full"


def test_two_load_tests_started_in_the_same_second_keep_their_own_logs(tmp_path):
    first = unique_folder(tmp_path, "20261129T000000-x-default", suffix=LOADGEN_DIR_SUFFIX)
    second = unique_folder(tmp_path, "20261129T000000-x-default", suffix=LOADGEN_DIR_SUFFIX)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith(LOADGEN_DIR_SUFFIX) and second.name.endswith(LOADGEN_DIR_SUFFIX)


# -------------------------------------------------------------------------------------------------- NaN


@pytest.fixture
def nan_result(tmp_path: Path) -> Path:
    data = json.loads(V1_PLAIN.read_text())
    data["summary"]["throughput"]["requests_per_s"]["value"] = float("nan")
    data["energy"]["joules_per_request"] = float("nan")
    # No "nan" in the folder names: the test below looks for that word in output that may wrap the path.
    path = tmp_path / "undefined-metrics" / "v1-fixture-machine" / V1_PLAIN.name
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_a_nan_metric_fails_its_gate(nan_result, capsys):
    # Latency gates are computed from the samples, where a NaN makes the file damaged (see above); a stored
    # metric such as energy per request can be NaN in a readable result.
    gates = "latency.p50:50%,energy.per_request:10%,memory.peak_rss:50%"
    assert main(["check", "--baseline", str(V1_PLAIN), "--fail-on", gates, str(nan_result)]) == 1
    out = capsys.readouterr().out
    assert "FAIL quickstart [default] energy.per_request: not a number in the current result" in out
    assert "1 of 3 gate check(s) failed" in out
    assert "nan%" not in out


def test_show_and_report_print_n_a_for_nan(nan_result, tmp_path, capsys):
    assert main(["show", str(nan_result)]) == 0
    out = capsys.readouterr().out.replace(str(nan_result), "")
    assert "n/a" in out and "nan" not in out.lower()
    assert main(["report", str(nan_result), "-o", str(tmp_path / "report"), "--no-figures"]) == 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert ">nan<" not in html.lower()


@pytest.mark.slow
def test_report_figures_draw_a_result_with_nan_metrics(nan_result, tmp_path):
    assert main(["report", str(nan_result), "-o", str(tmp_path / "report")]) == 0
    assert list((tmp_path / "report").glob("*.png"))
    assert ">nan<" not in (tmp_path / "report" / "report.html").read_text().lower()


def test_input_errors_are_one_line_each(tmp_path):
    with pytest.raises(InputError) as info:
        load_result(tmp_path / "absent.json")
    assert "\n" not in str(info.value)


def test_interrupted_cleanup_leaves_machine_folder_readable(tmp_path):
    folder = tmp_path / "results" / "m"
    logs = folder / f"20261129T000000-x-default{LOADGEN_DIR_SUFFIX}"
    logs.mkdir(parents=True)
    (logs / "mlperf_log_accuracy.json").write_text("[")  # an interrupted run's leftover
    (folder / V1_PLAIN.name).write_bytes(V1_PLAIN.read_bytes())
    assert main(["show", str(tmp_path / "results"), "--strict"]) == 0


def test_environment_is_not_required_in_tests():
    assert os.environ.get("RECBENCH_MACHINE") is None or True


def test_a_path_of_the_wrong_kind_is_named_as_such_not_as_missing(tmp_path, capsys, write_scenario):
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    scenario = write_scenario(tiny_scenario_dict("kind", model={"path": str(a_file)}))
    cases = [
        (["validate", "/dev/null"], "/dev/null: not a regular file, so not a scenario file"),
        (["tiers", "--tiers", str(tmp_path)], f"{tmp_path}: a folder, not a tiers file"),
        (["baseline", "list", "--results-dir", str(a_file)], f"--results-dir: {a_file}: a file, not a results folder"),
        (["run", str(scenario), "--results-dir", str(tmp_path / "r")], f"model.path: {a_file}: a file, not a folder"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        (line,) = errors(capsys)
        assert expected in line, (argv, line)


@pytest.mark.parametrize("price", ["-1", "nan", "abc", "1e9"])
def test_a_bad_price_per_hour_reads_like_every_other_flag(tmp_path, capsys, price):
    assert main(["plan", str(tmp_path), "--qps", "1", "--slo-p99-ms", "100", "--price-per-hour", price]) == 2
    (line,) = errors(capsys)
    assert line.startswith("error: --price-per-hour: must be") and repr(price) in line
