"""`recbench run` end to end through the CLI on tiny scenarios: the result file, sweeps, interruption and
--resume, errors that keep finished points, and the readers of results (show, DataFrame)."""

from __future__ import annotations

import json
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.core.kinds import WarningKind
from bench.core.stages import Stage
from bench.execution import jobs
from bench.measurement import preflight
from bench.models.build import build_random_model
from bench.results.frame import load_results_frame
from bench.results.model import SCHEMA_VERSION
from bench.results.reader import load_result, read_results
from bench.scenarios.loader import expand_points
from tests.conftest import tiny_scenario_dict


def run_cli(*args: str) -> int:
    return main(["run", *args, "--no-progress"])


def result_files(results_dir: Path) -> list[Path]:
    return sorted(p for p in results_dir.rglob("*.json") if "calibration" not in p.parts)


def test_run_writes_a_complete_versioned_result(tmp_path, write_scenario, capsys):
    scenario = write_scenario(tiny_scenario_dict())
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "results")) == 0
    [path] = result_files(tmp_path / "results")
    assert str(path) in capsys.readouterr().out
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION == 2
    result = load_result(path)

    assert result.scenario.name == "tiny" and result.scenario.batch_size == 2
    assert path.parent.name == result.machine
    env = result.environment
    assert env.cpu_model and env.cpu_logical_cores and env.ram_total_bytes > 0
    assert env.torch_version and env.transformers_version and env.torch_threads > 0
    assert env.cuda.available == torch.cuda.is_available()
    samples = result.latency.samples
    assert result.latency.iterations == 3
    for stage in (
        Stage.PREPROCESS,
        Stage.INTEREST,
        Stage.CANDIDATES,
        Stage.SCORING,
        Stage.RANK_FEEDBACK,
        Stage.END_TO_END,
        Stage.LLM_FORWARD,
    ):
        assert len(samples[stage]) == 3 and min(samples[stage]) > 0
    stats = result.summary.latency.stages[Stage.END_TO_END]
    assert stats.p50 == pytest.approx(sorted(samples[Stage.END_TO_END])[1])
    flops = result.summary.flops.stages[Stage.SCORING]
    assert flops.counted_flops == flops.analytic_flops_estimate > 0
    assert result.summary.flops.llm.mfu is not None and result.summary.flops.llm.mfu > 0
    assert result.memory.measured.rss_peak >= result.memory.measured.rss_baseline > 0
    assert result.memory.analytic_estimate.weights_bytes > 0
    assert result.summary.throughput.requests_per_s == pytest.approx(2 / stats.p50)
    assert result.model.weights == "random" and result.quality.chance_level is True
    assert result.quality.note is not None and "chance-level" in result.quality.note
    assert result.quality.top_n == 3
    assert result.peak.gemm.flops_per_s > 0


def test_show_and_dataframe_read_results(tmp_path, write_scenario, capsys):
    run_cli(str(write_scenario(tiny_scenario_dict())), "--results-dir", str(tmp_path / "r"))
    capsys.readouterr()
    assert main(["show", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "end_to_end" in out and "requests/s" in out and "peak RSS" in out
    (stored,) = read_results([tmp_path / "r"])
    if stored.result.energy.method == "modelled":  # no meter here: the line says how the estimate was made
        utilisation = stored.result.energy.readings[0]["utilisation"]
        assert f"CPU utilisation {utilisation:.0%}" in out and "full TDP x the median batch time" in out
    frame = load_results_frame(tmp_path / "r")
    assert len(frame) == 1
    assert frame.loc[0, "scenario"] == "tiny"
    assert frame.loc[0, "latency.end_to_end.p50_s"] > 0
    assert frame.loc[0, "throughput.requests_per_s"] > 0
    # The same point run again a day later: both runs are rows, the newer one marked as the one reports use.
    rerun = json.loads(stored.path.read_text())
    rerun["created_at"] = (stored.result.created_at + timedelta(days=1)).isoformat()
    (stored.path.parent / "rerun.json").write_text(json.dumps(rerun))
    frame = load_results_frame(tmp_path / "r").set_index("path")
    assert frame["newest"].to_dict() == {str(stored.path): False, str(stored.path.parent / "rerun.json"): True}
    # How the GEMM peak was obtained: this run measured it (a fresh results folder), and when.
    peak = stored.result.peak.gemm
    assert peak.measured_now is True and peak.checked_at is not None
    assert f"checked by this run's measurement {peak.checked_at:%Y-%m-%d %H:%M} UTC" in " ".join(out.split())
    # A result's note on its LLM figures (achieved above the peak: a peak measured while busy) is shown with them.
    noted = json.loads(stored.path.read_text())
    noted["summary"]["flops"]["llm"]["note"] = "achieved exceeds the measured GEMM peak: a test note"
    (tmp_path / "noted").mkdir()
    (tmp_path / "noted" / "noted.json").write_text(json.dumps(noted))
    assert main(["show", str(tmp_path / "noted" / "noted.json")]) == 0
    assert "achieved exceeds the measured GEMM peak: a test note" in " ".join(capsys.readouterr().out.split())
    (tmp_path / "nothing-here").mkdir()
    empty = load_results_frame(tmp_path / "nothing-here")
    assert empty[empty["newest"]].empty and list(empty.columns[:2]) == ["path", "newest"]


def test_interrupted_sweep_keeps_finished_points_and_resume_skips_them(tmp_path, write_scenario, monkeypatch, capsys):
    scenario = write_scenario(tiny_scenario_dict(name="sweep", sweep={"batch_size": [1, 2, 3]}))
    results = tmp_path / "results"
    real_run_point = jobs.run_point
    calls = {"n": 0}

    def interrupt_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_run_point(*args, **kwargs)

    monkeypatch.setattr(jobs, "run_point", interrupt_second)
    assert run_cli(str(scenario), "--results-dir", str(results)) == 130
    assert "--resume" in capsys.readouterr().err
    assert len(result_files(results)) == 1

    monkeypatch.setattr(jobs, "run_point", real_run_point)
    assert run_cli(str(scenario), "--results-dir", str(results), "--resume") == 0
    out = capsys.readouterr().out
    assert "skipped (already measured, --resume): sweep [batch_size=1]" in out
    files = result_files(results)
    assert len(files) == 3
    keys = sorted(load_result(p).point.key for p in files)
    assert keys == ["batch_size=1", "batch_size=2", "batch_size=3"]


def test_a_point_failing_at_run_time_keeps_earlier_results(tmp_path, write_scenario, monkeypatch, capsys):
    scenario = write_scenario(tiny_scenario_dict(name="oom", sweep={"batch_size": [1, 2]}))
    real_run_point = jobs.run_point

    def out_of_memory_on_the_second(point, **kwargs):
        if point.index == 1:
            raise MemoryError
        return real_run_point(point, **kwargs)

    monkeypatch.setattr(jobs, "run_point", out_of_memory_on_the_second)
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert "sweep point batch_size=2: out of memory" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert len(result_files(tmp_path / "r")) == 1


def test_a_prompt_budget_too_small_is_found_before_a_model_is_built(tmp_path, write_scenario, monkeypatch, capsys):
    import bench.measurement.prepare

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(bench.measurement.prepare, "build_random_model", forbidden)
    scenario = write_scenario(tiny_scenario_dict(name="budget", sweep={"max_prompt_tokens": [256, 16]}))
    for command in (
        ["validate", "--here", str(scenario)],
        ["run", str(scenario), "--results-dir", str(tmp_path / "r")],
    ):
        assert main(command) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(f"error: {scenario}: sweep point max_prompt_tokens=16: max_prompt_tokens (16) is too")
        assert "longest candidate titles" in line
    assert not (tmp_path / "r").exists() or result_files(tmp_path / "r") == []


def test_a_lone_point_s_prompt_budget_is_checked_by_its_set_up_alone(tmp_path, write_scenario, monkeypatch, capsys):
    """One point: the plan skips building the data for the prompt check (start-up time); the point's set-up makes
    the same check, before a model is built, with the same one-line error."""
    import bench.measurement.prepare
    import bench.runner

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was built")

    loads: list[str] = []
    real_load = bench.measurement.prepare.load_inputs
    monkeypatch.setattr(bench.measurement.prepare, "build_random_model", forbidden)
    monkeypatch.setattr(bench.measurement.prepare, "load_inputs", lambda s: loads.append(s.name) or real_load(s))
    monkeypatch.setattr(bench.runner.InputsCache, "get", lambda self, s: loads.append("plan") or real_load(s))
    scenario = write_scenario(tiny_scenario_dict(name="budget", max_prompt_tokens=16))
    assert main(["run", str(scenario), "--results-dir", str(tmp_path / "r")]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.strip()]  # the progress bar's end
    assert line.startswith(f"error: {scenario}: max_prompt_tokens (16) is too")
    assert loads == ["budget"]  # built once, by the set-up
    assert main(["validate", "--here", str(scenario)]) == 2  # validate still checks a lone point itself
    assert loads == ["budget", "plan"]


def test_an_unknown_tier_is_refused_before_a_point_runs(tmp_path, write_scenario, monkeypatch, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("a point ran")

    monkeypatch.setattr(jobs, "run_point", forbidden)
    scenario = write_scenario(tiny_scenario_dict())
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r"), "--tier", "no-such-tier") == 2
    assert "--tier: unknown tier 'no-such-tier'" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["likelihood", "generate"])
def test_other_scoring_modes_run_end_to_end(tmp_path, write_scenario, mode):
    scenario = write_scenario(tiny_scenario_dict(name=mode, scoring={"mode": mode, "new_tokens": 3}))
    assert run_cli(str(scenario), "--results-dir", str(tmp_path)) == 0
    [path] = result_files(tmp_path)
    result = load_result(path)
    summary = result.summary
    scoring = summary.flops.stages[Stage.SCORING]
    assert scoring.counted_flops == scoring.analytic_flops_estimate
    if mode == "likelihood":
        assert summary.flops.likelihood_prompt_sharing is not None
        assert summary.flops.likelihood_prompt_sharing.saving_factor > 1
    else:
        assert len(result.latency.samples[Stage.LLM_DECODE_TOKEN]) == 3 * 2
        assert summary.throughput.decode_tokens_per_s is not None and summary.throughput.decode_tokens_per_s > 0
        assert result.work.generated_tokens == 3 * 2 * 3


def test_local_checkpoint_runs_with_its_own_tokenizer(tmp_path, write_scenario, tiny_arch, tiny_tokenizer):
    model = build_random_model(tiny_arch, dtype=torch.float32, device=torch.device("cpu"), seed=0).model
    model.save_pretrained(tmp_path / "ckpt")
    tiny_tokenizer.save_pretrained(tmp_path / "ckpt")
    scenario = write_scenario(tiny_scenario_dict(name="ckpt", model={"path": str(tmp_path / "ckpt")}))
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r")) == 0
    [path] = result_files(tmp_path / "r")
    result = load_result(path)
    assert result.model.weights == "loaded"
    assert result.quality.chance_level is False
    assert "train_tokenizer" not in result.setup.seconds


def test_movielens_files_run_end_to_end(tmp_path, write_scenario):
    data = tmp_path / "ml"
    data.mkdir()
    ratings, movies = [], []
    for movie in range(1, 41):
        movies.append(f"{movie}::Movie number {movie} ({1950 + movie})::Drama|Comedy")
    for user in range(1, 9):
        for step, movie in enumerate(range(user, user + 12)):
            ratings.append(f"{user}::{movie}::{1 + (movie % 5)}::{1000 + step}")
    (data / "ratings.dat").write_text("\n".join(ratings) + "\n", encoding="latin-1")
    (data / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")
    workload = {"dataset": "movielens", "path": str(data), "num_users": 8, "candidates": 5, "top_n": 2}
    scenario = write_scenario(tiny_scenario_dict(name="ml", workload=workload))
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r")) == 0
    [path] = result_files(tmp_path / "r")
    result = load_result(path)
    assert result.workload.source == "movielens" and result.workload.users == 8


def test_a_data_folder_without_the_expected_files_is_named_by_its_field(tmp_path, write_scenario, capsys):
    data = tmp_path / "not-movielens"
    data.mkdir()
    (data / "notes.csv").write_text("a,b\n")
    workload = {"dataset": "movielens", "path": str(data), "num_users": 8, "candidates": 5, "top_n": 2}
    scenario = write_scenario(tiny_scenario_dict(name="ml", workload=workload))
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r")) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert f"workload.path: {data}: expected ratings.dat + movies.dat" in line and "found notes.csv" in line


def test_bf16_on_a_cpu_without_native_support_warns_with_the_slowdown(monkeypatch, write_scenario):
    monkeypatch.setattr(preflight, "cpu_has_native_bf16", lambda: False)
    [point] = expand_points(write_scenario(tiny_scenario_dict(dtype="bfloat16")))
    dtype, found = preflight.resolve_dtype(point.scenario)
    assert dtype == "bfloat16"
    assert len(found) == 1 and "~4x slower than float32" in found[0].message
    assert found[0].kind == WarningKind.SLOW_DTYPE
    [auto_point] = expand_points(write_scenario(tiny_scenario_dict(name="auto", dtype="auto")))
    assert preflight.resolve_dtype(auto_point.scenario) == ("float32", [])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_quickstart_runs_on_cuda(tmp_path, write_scenario):
    scenario = write_scenario(tiny_scenario_dict(name="cuda", device="cuda"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_cli(str(scenario), "--results-dir", str(tmp_path)) == 0
    [path] = result_files(tmp_path)
    result = load_result(path)
    assert result.latency.method == "cuda_event"
    assert (result.memory.measured.cuda_peak_allocated or 0) > 0


def test_the_ray_executor_without_its_extra_says_how_to_install_it(tmp_path, write_scenario, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed: import ray fails
    scenario = write_scenario(tiny_scenario_dict())
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r"), "--executor", "ray") == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "pip install 'recbench[ray]'" in line
    assert run_cli(str(scenario), "--results-dir", str(tmp_path / "r"), "--max-parallel", "2") == 2
    assert "--max-parallel: only with --executor ray" in capsys.readouterr().err


def test_other_processes_busy_during_the_timed_batches_are_a_warning_in_the_result(tmp_path, write_scenario, capsys):
    from bench.hardware.environment import OtherProcessesCpu
    from bench.measurement import timed

    class BusyNeighbours(OtherProcessesCpu):
        def __exit__(self, *exc: object) -> None:
            super().__exit__(*exc)
            self.share = 0.9  # as if another process had spun on both cores while the batches ran

    scenario = write_scenario(tiny_scenario_dict())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timed, "OtherProcessesCpu", BusyNeighbours)
        assert run_cli(str(scenario), "--results-dir", str(tmp_path / "results")) == 0
    expected = "machine busy during the timed batches: other processes used 90% of"
    assert f"warning: {expected}" in capsys.readouterr().err  # said as it is found
    [path] = result_files(tmp_path / "results")
    busy = load_result(path).warnings_of(WarningKind.BUSY_MACHINE)
    assert any(message.startswith(expected) for message in busy), busy  # and kept in the result


def test_the_progress_bar_is_drawn_on_a_terminal_only():
    import io

    from rich.console import Console

    from bench.runner import _progress

    assert _progress(Console(file=io.StringIO()), enabled=True).disable  # a log file or a pipe: nothing drawn
    assert not _progress(Console(file=io.StringIO(), force_terminal=True), enabled=True).disable
    assert _progress(Console(file=io.StringIO(), force_terminal=True), enabled=False).disable
