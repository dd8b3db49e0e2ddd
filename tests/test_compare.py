"""`recbench compare`, `check` and `baseline`: pairing, the significance and min-effect rules, noise warnings,
gates and their exit codes, and saved baselines, on result files derived from one real tiny run whose latency
samples are replaced by controlled ones."""

from __future__ import annotations

import json
import re
import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.cli import main as compare_cli
from bench.cli import main as recbench
from bench.compare import Gate, compare_results, parse_gates, resolve_metric, save_baseline
from bench.compare.stats import classify, geometric_mean, noise_problem, parse_fraction
from bench.core.errors import InputError
from bench.core.io import atomic_write_json
from bench.core.stats import summarize
from bench.results.model import Result
from bench.results.reader import load_result
from bench.results.store import result_filename
from tests.conftest import tiny_scenario_dict

MACHINE = "test-machine-2c"
STAGE_SECONDS = {"preprocess": 0.0002, "interest": 0.001, "candidates": 0.002, "scoring": 0.1, "rank_feedback": 0.003}
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def real_result(tmp_path_factory) -> Result:
    """One real result of the tiny scenario, run once per session through the CLI."""
    root = tmp_path_factory.mktemp("compare-run")
    scenario = root / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(tiny_scenario_dict(name="tiny"), sort_keys=False))
    assert recbench(["run", str(scenario), "--results-dir", str(root / "results"), "--no-progress"]) == 0
    (path,) = (root / "results").rglob("*-tiny-default.json")
    return load_result(path)


def variant(
    real: Result,
    folder: Path,
    *,
    factor: float = 1.0,
    jitter: float = 0.01,
    n: int = 20,
    seed: int = 0,
    scenario: str = "tiny",
    point: str = "default",
    when: datetime = T0,
    rss_factor: float = 1.0,
    tail: float = 0.0,
    isa: str | None = None,
    warnings: list[dict] | None = None,
) -> Path:
    """Write a copy of the real result with synthetic samples: each stage's time x factor, relative gaussian
    jitter (the cv, roughly), n samples; the summary is recomputed from them as the harness does."""
    result = real.model_dump(mode="json")
    rng = np.random.default_rng(seed)
    samples = {
        stage: (seconds * factor * (1 + jitter * rng.standard_normal(n))).clip(1e-6).tolist()
        for stage, seconds in STAGE_SECONDS.items()
    }
    samples["end_to_end"] = [sum(parts) for parts in zip(*samples.values(), strict=True)]
    if tail:  # the slowest `tail` fraction of batches take twice as long: the median barely moves
        cut = sorted(samples["end_to_end"])[int(n * (1 - tail))]
        samples["end_to_end"] = [t * 2 if t >= cut else t for t in samples["end_to_end"]]
    result["latency"]["samples"] = samples
    result["latency"]["iterations"] = n
    result["summary"]["latency"]["stages"] = {stage: summarize(s).to_dict() for stage, s in samples.items()}
    batch = result["scenario"]["batch_size"]
    result["summary"]["throughput"]["requests_per_s"] = batch / summarize(samples["end_to_end"]).p50
    result["memory"]["measured"]["rss_peak"] = int(result["memory"]["measured"]["rss_peak"] * rss_factor)
    result["scenario"]["name"] = scenario
    result["point"]["key"] = point
    result["created_at"] = when.isoformat()
    result["machine"] = MACHINE
    result["warnings"] = warnings or []  # the real run's own warnings (a busy machine) are not what these tests control
    if isa is not None:  # the same run, as if measured on another CPU
        result["environment"]["fingerprint"]["isa"] = isa
        result["environment"]["fingerprint"]["digest"] = f"{isa}-digest"[:8]
    path = folder / MACHINE / result_filename(scenario, point, when)
    return atomic_write_json(path, Result.model_validate(result).model_dump(mode="json"))


def test_identical_samples_are_the_same(real_result, tmp_path):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", seed=1)
    comparison = compare_results([base], [cur])
    (pair,) = comparison.pairs
    assert {m.verdict for m in pair.metrics} == {"same"}
    e2e = pair.metric("latency.p50")
    assert e2e.ratio == 1.0 and e2e.test.low <= 0 <= e2e.test.high and e2e.significant is False
    assert comparison.end_to_end_p50_geomean == pytest.approx(1.0)
    assert pair.warnings == []  # 20 samples, cv about 1%
    assert pair.metric("memory.peak_rss").test_description == "no significance test (single value)"
    assert "bootstrap" in e2e.test_description


def test_clear_slowdown_is_slower_and_fails_the_gate(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", factor=1.3, seed=2)
    (pair,) = compare_results([base], [cur]).pairs
    for name in ("latency.p50", "latency.p99", "latency.scoring.p50"):
        m = pair.metric(name)
        assert (m.verdict, m.assessment, m.significant) == ("slower", "worse", True), name
        assert m.ratio == pytest.approx(1.3, rel=0.05)
    throughput = pair.metric("throughput")
    assert (throughput.verdict, throughput.assessment) == ("lower", "worse")
    assert pair.metric("cost.per_1m").assessment == "worse"  # cost follows the end-to-end latency

    code = compare_cli(["check", "--baseline", str(base), "--fail-on", "latency.p99:10%,memory.peak_rss:5%", str(cur)])
    out = capsys.readouterr().out
    assert code == 1
    fails = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1, out
    pattern = (
        r"FAIL tiny \[default\] latency\.p99: \d+\.\d ms -> \d+\.\d ms \(\+3\d\.\d%, 95% CI \[\+\d+\.\d%, \+\d+\.\d%\]"
    )
    assert re.match(pattern, fails[0]), fails[0]
    assert "weak statistics" in fails[0]  # a p99 from 20 batches is near the maximum
    assert "memory.peak_rss" not in out.split("FAIL", 2)[1]


def test_a_change_in_the_tail_alone_fails_a_p99_gate(real_result, tmp_path, capsys):
    # 5% of batches twice as slow: the median holds (a location test sees little), the p99 doubles.
    base = variant(real_result, tmp_path / "a", seed=1, n=200)
    cur = variant(real_result, tmp_path / "b", seed=2, n=200, tail=0.05)
    (pair,) = compare_results([base], [cur]).pairs
    assert pair.metric("latency.p50").verdict == "same"
    p99 = pair.metric("latency.p99")
    assert (p99.verdict, p99.significant) == ("slower", True)
    assert p99.interval is not None and p99.interval[0] > 0.5
    assert (
        compare_cli(["check", "--baseline", str(base), "--fail-on", "latency.p50:10%,latency.p99:10%", str(cur)]) == 1
    )
    fails = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 1 and "latency.p99" in fails[0]


def test_check_refuses_a_baseline_from_other_hardware(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1, isa="avx512-bf16")
    cur = variant(real_result, tmp_path / "b", seed=1, factor=10)
    gates = ["--fail-on", "latency.p50:10%"]
    assert compare_cli(["check", "--baseline", str(base), *gates, str(cur)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "measured on different hardware (isa avx512-bf16 vs " in line and "--allow-different-hardware" in line
    assert compare_cli(["check", "--baseline", str(base), *gates, str(cur), "--allow-different-hardware"]) == 1
    assert compare_cli(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "measured on different hardware" in out and "AVX512-BF16" in out


def test_small_change_is_the_same_under_min_effect(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1, jitter=0.002)
    cur = variant(real_result, tmp_path / "b", factor=1.02, seed=2, jitter=0.002)
    (pair,) = compare_results([base], [cur], min_effect=0.05).pairs
    m = pair.metric("latency.p50")
    assert m.significant is True  # a real 2% shift with little noise...
    assert m.verdict == "same"  # ...but below the 5% minimum effect
    (strict,) = compare_results([base], [cur], min_effect=0.01).pairs
    assert strict.metric("latency.p50").verdict == "slower"
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "latency.p99:10%", str(cur)]) == 0
    out = capsys.readouterr().out
    assert "PASS tiny [default]: latency.p99 +2." in out and "none failed" in out


def base_anon(path: Path) -> int | None:
    return load_result(path).memory.measured.anon_peak


def test_scalar_gate_uses_the_threshold_alone(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", seed=1, rss_factor=1.1)
    (pair,) = compare_results([base], [cur]).pairs
    m = pair.metric("memory.peak_rss")
    assert (m.verdict, m.assessment, m.test, m.significant) == ("more", "worse", None, None)
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "memory.peak_rss:5%", str(cur)]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL"))
    assert re.match(r"FAIL tiny \[default\] memory\.peak_rss: [\d.]+ MiB -> [\d.]+ MiB \(\+10\.0%, single value", line)
    assert Gate("memory.peak_rss", 0.15).evaluate(pair).status == "pass"
    # The process's own memory (RSS less file-backed pages) is its own metric; this variant changed only RSS.
    anon = Gate("memory.peak_anon", 0.05).evaluate(pair)
    assert anon.status == ("pass" if base_anon(base) is not None else "skip"), anon.line()
    cuda = Gate("memory.cuda_peak", 0.05).evaluate(pair)  # a CPU run has no CUDA peak: skipped, said so
    assert cuda.status == "skip" and "not measured" in cuda.line()
    # Beside a gate that checks something the skip is harmless; alone, nothing was verified: a bad gate list.
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "memory.cuda_peak:5%,flops:5%", str(base)]) == 0
    capsys.readouterr()
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "memory.cuda_peak:5%", str(base)]) == 2
    captured = capsys.readouterr()
    assert "no gate measured anything on 1 matched point(s)" in captured.out
    assert "error: --fail-on: memory.cuda_peak:5%: no gate measured anything" in captured.err


def test_faster_is_better_and_never_fails(real_result, tmp_path):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", factor=0.7, seed=2)
    (pair,) = compare_results([base], [cur]).pairs
    assert (pair.metric("latency.p50").verdict, pair.metric("latency.p50").assessment) == ("faster", "better")
    assert (pair.metric("throughput").verdict, pair.metric("throughput").assessment) == ("higher", "better")
    assert all(g.evaluate(pair).status == "pass" for g in parse_gates("latency.p99:0%,throughput:0%"))


def test_noisy_samples_warn_and_weaken(real_result, tmp_path):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", seed=2, jitter=0.3)
    (pair,) = compare_results([base], [cur]).pairs
    assert len(pair.warnings) == 1
    assert pair.warnings[0].startswith("current ") and "end_to_end (cv" in pair.warnings[0]
    assert "weak" in pair.warnings[0]
    assert pair.metric("latency.p50").weak and pair.metric("throughput").weak
    assert not pair.metric("memory.peak_rss").weak


def test_few_samples_warn(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1, n=3)
    cur = variant(real_result, tmp_path / "b", seed=2)
    (pair,) = compare_results([base], [cur]).pairs
    assert any(w.startswith("baseline ") and "only 3 samples (< 5)" in w for w in pair.warnings)
    assert pair.metric("latency.p99").weak
    assert compare_cli(["compare", str(base), str(cur)]) == 0
    out = capsys.readouterr().out
    assert "only 3 samples" in out and "weak" in out


def test_unmatched_points_are_listed(real_result, tmp_path, capsys):
    base = [
        variant(real_result, tmp_path / "a", seed=1),
        variant(real_result, tmp_path / "a", seed=1, point="batch_size=4"),
    ]
    cur = [variant(real_result, tmp_path / "b", seed=2), variant(real_result, tmp_path / "b", seed=2, scenario="other")]
    comparison = compare_results([tmp_path / "a"], [tmp_path / "b"])
    assert [p.label for p in comparison.pairs] == ["tiny [default]"]
    assert [r.label for r in comparison.unmatched_baseline] == ["tiny [batch_size=4]"]
    assert [r.label for r in comparison.unmatched_current] == ["other [default]"]
    assert compare_cli(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "unmatched points" in out and "batch_size=4" in out and "other" in out
    assert (
        compare_cli(["check", "--baseline", str(tmp_path / "a"), "--fail-on", "latency.p99:10%", *map(str, cur)]) == 0
    )
    out = capsys.readouterr().out
    assert f"UNMATCHED tiny [batch_size=4]: in the baseline only ({base[1]})" in out
    assert "UNMATCHED other [default]: no baseline" in out


def test_newest_result_per_point_is_used(real_result, tmp_path):
    variant(real_result, tmp_path / "a", factor=1.5, seed=1, when=T0)
    newest = variant(real_result, tmp_path / "a", seed=1, when=T0 + timedelta(hours=1))
    cur = variant(real_result, tmp_path / "b", seed=1)
    comparison = compare_results([tmp_path / "a"], [cur])
    (pair,) = comparison.pairs
    assert pair.baseline.path == newest and pair.metric("latency.p50").ratio == 1.0
    ((side, used, older),) = comparison.superseded
    assert side == "baseline" and used.path == newest and len(older) == 1


def test_no_matching_point_is_an_error_for_check(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", seed=1, scenario="other")
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "latency.p99:10%", str(cur)]) == 2
    assert "no result matches a baseline point" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("gates", "message"),
    [
        ("", "--fail-on: empty"),
        ("  ", "--fail-on: empty"),
        ("latency.p95:10%", "unknown metric 'latency.p95'"),
        ("latency.scorng.p99:10%", "unknown metric 'latency.scorng.p99'"),
        ("bogus:5%", "unknown metric 'bogus'"),
        ("latency.p99", "has no threshold"),
        ("latency.p99:ten%", "not a percentage"),
        ("latency.p99:10", "ambiguous"),
        ("latency.p99:-5%", "non-negative"),
        ("latency.p99:", "empty"),
        ("latency.p99:10%,", "empty entry"),
    ],
)
def test_malformed_gate_is_exit_2_with_one_line(real_result, tmp_path, capsys, gates, message):
    base = variant(real_result, tmp_path / "a", seed=1)
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", gates, str(base)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("error: --fail-on") and message in line, line


def test_missing_baseline_is_exit_2(real_result, tmp_path, capsys):
    cur = variant(real_result, tmp_path / "b", seed=1)
    missing = tmp_path / "nowhere" / "baseline.json"
    assert compare_cli(["check", "--baseline", str(missing), "--fail-on", "latency.p99:10%", str(cur)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"error: --baseline: {missing}: no such result file or folder"
    args = ["check", "--baseline", "nosuch", "--results-dir", str(tmp_path / "results"), "--fail-on", "flops:1%"]
    assert compare_cli([*args, str(cur)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "nosuch" in line and f"for machine {MACHINE}" in line
    # compare takes the baseline as its first argument, BASELINE, and says so; a file name is not read as a
    # baseline name.
    for given in (str(missing), "nosuch.json"):
        assert compare_cli(["compare", given, str(cur)]) == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line == f"error: BASELINE: {given}: no such result file or folder"


def test_baseline_save_then_check_by_name(real_result, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results_dir = tmp_path / "results"
    variant(real_result, results_dir, factor=2.0, seed=1, when=T0)  # older result of the same point: not kept
    saved = variant(real_result, results_dir, seed=1, when=T0 + timedelta(minutes=5))
    assert compare_cli(["baseline", "save", str(results_dir), "--name", "main", "--results-dir", str(results_dir)]) == 0
    folder = results_dir / "baselines" / MACHINE / "main"
    assert f"in {folder}" in capsys.readouterr().out
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["name"] == "main" and manifest["machine"] == MACHINE
    assert manifest["git_commit"] == real_result.environment.git_commit
    # Recorded relative to the working folder (tmp_path here), never as an absolute path a commit would carry.
    assert [s["file"] for s in manifest["sources"]] == [str(saved.resolve().relative_to(tmp_path.resolve()))]
    assert len(manifest["superseded_not_copied"]) == 1
    assert load_result(folder / manifest["sources"][0]["stored_as"]) == load_result(saved)

    # The results folder now holds the baseline too: it is not read as new results.
    current = variant(real_result, tmp_path / "new", factor=1.3, seed=2)
    gate = ["--fail-on", "latency.p50:10%", "--results-dir", str(results_dir)]
    assert compare_cli(["check", "--baseline", "main", *gate, str(current)]) == 1
    assert f"baseline {folder};" in capsys.readouterr().out
    assert compare_cli(["check", "--baseline", "main", *gate, str(saved)]) == 0
    assert compare_cli(["compare", "main", str(results_dir), "--results-dir", str(results_dir)]) == 0
    assert "unmatched points: none" in capsys.readouterr().out
    assert compare_cli(["baseline", "list", "--results-dir", str(results_dir)]) == 0
    assert f"{MACHINE}/main: 1 result(s)" in capsys.readouterr().out


def test_baseline_save_twice_needs_force(real_result, tmp_path, capsys):
    results_dir = tmp_path / "results"
    first = variant(real_result, tmp_path / "runs", seed=1)
    save = ["baseline", "save", "--name", "main", "--results-dir", str(results_dir)]
    assert compare_cli([*save, str(first)]) == 0
    second = variant(real_result, tmp_path / "runs2", seed=2, when=T0 + timedelta(days=1))
    capsys.readouterr()
    assert compare_cli([*save, str(second)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "already exists" in line and "--force" in line
    folder = results_dir / "baselines" / MACHINE / "main"
    assert [p.name for p in folder.glob("*-tiny-*.json")] == [first.name]  # untouched
    assert compare_cli([*save, str(second), "--force"]) == 0
    assert [p.name for p in folder.glob("*-tiny-*.json")] == [second.name]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    with pytest.raises(InputError, match="not a safe name"):
        save_baseline([first], name="../escape", results_dir=results_dir)


def test_baseline_refuses_mixed_machines(real_result, tmp_path):
    first = variant(real_result, tmp_path / "runs", seed=1)
    other = json.loads(first.read_text())
    other["machine"], other["scenario"]["name"] = "another-machine", "other"
    second = atomic_write_json(tmp_path / "runs" / "x.json", other)
    with pytest.raises(InputError, match="2 machines"):
        save_baseline([first, second], name="main", results_dir=tmp_path / "results")
    # The same point measured on two machines: the older run is another machine's, not an older run to drop.
    elsewhere = json.loads(first.read_text())
    elsewhere["machine"] = "another-machine"
    elsewhere["created_at"] = (datetime.fromisoformat(elsewhere["created_at"]) - timedelta(hours=1)).isoformat()
    third = atomic_write_json(tmp_path / "runs" / "y.json", elsewhere)
    with pytest.raises(InputError, match="2 machines"):
        save_baseline([first, third], name="main", results_dir=tmp_path / "results")


def test_metric_registry_and_parsers():
    assert resolve_metric("latency.p99").name == "latency.end_to_end.p99"
    assert resolve_metric("latency.scoring.p50").name == "latency.scoring.p50"
    assert resolve_metric("latency.llm_forward.p99") is not None
    assert resolve_metric("throughput").higher_is_worse is False
    assert resolve_metric("cost.per_1m").higher_is_worse is True
    assert resolve_metric("latency.scoring.p95") is None and resolve_metric("memory") is None
    assert parse_gates(" latency.p99:10% , cost.per_1m:0.05") == [Gate("latency.p99", 0.10), Gate("cost.per_1m", 0.05)]
    with pytest.raises(InputError, match=r"latency\.p50 is gated twice"):
        parse_gates("latency.p50:10%,latency.p50:20%")
    with pytest.raises(InputError, match="gated twice"):  # the same metric under its long name
        parse_gates("latency.p50:10%,latency.end_to_end.p50:20%")
    assert parse_fraction("12.5%", what="x") == 0.125 and parse_fraction("0", what="x") == 0
    assert classify(1.3, higher_is_worse=True, min_effect=0.05, significant=False) == (0, "same")
    assert classify(1.3, higher_is_worse=False, min_effect=0.05, significant=None) == (1, "better")
    assert classify(0.96, higher_is_worse=True, min_effect=0.05, significant=True) == (0, "same")
    assert geometric_mean([2.0, 0.5]) == pytest.approx(1.0) and geometric_mean([]) is None
    assert noise_problem([1.0] * 4) == "only 4 samples (< 5)" and noise_problem([1.0] * 5) is None
    barely_noisy = [1.0 - 0.104 * (-1) ** i for i in range(6)]  # sample cv just above 10%
    assert noise_problem(barely_noisy) == f"cv {statistics.stdev(barely_noisy):.1%} > 10%"
    with pytest.raises(InputError, match="--alpha"):
        compare_results([Path("x")], [Path("y")], alpha=1.5)


def test_commands_run_through_the_recbench_parser(real_result, tmp_path):
    """`recbench check` and `recbench baseline save` are wired into bench.cli's parser."""
    from bench.cli import build_parser

    parser = build_parser()
    base = variant(real_result, tmp_path / "a", seed=1)
    args = parser.parse_args(["check", "--baseline", str(base), "--fail-on", "latency.p99:10%", str(base)])
    assert args.handler(args) == 0
    args = parser.parse_args(["baseline", "save", str(base), "--name", "x", "--results-dir", str(tmp_path / "r")])
    assert args.handler(args) == 0


BUSY = [{"kind": "busy_machine", "message": "other processes used 60% of the CPU while measuring"}]


def test_warnings_recorded_in_results_reach_check_and_block_a_baseline(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1)
    cur = variant(real_result, tmp_path / "b", seed=2, warnings=BUSY)
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "latency.p50:50%", str(cur)]) == 0
    out = capsys.readouterr().out
    assert "WARNING tiny [default]: current" in out and "busy_machine: other processes used 60%" in out
    save = ["baseline", "save", str(cur), "--name", "busy", "--results-dir", str(tmp_path / "r")]
    assert compare_cli(save) == 2
    assert "measured on a busy machine" in capsys.readouterr().err
    assert compare_cli([*save, "--allow-busy"]) == 0


def test_a_baseline_source_outside_the_working_folder_is_recorded_by_name(tmp_path, monkeypatch):
    from bench.compare.baseline import _as_recorded

    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert _as_recorded(tmp_path / "elsewhere" / "r.json") == "r.json"
    assert _as_recorded(tmp_path / "work" / "results" / "r.json") == "results/r.json"


def test_throughputs_interval_follows_the_requests_each_batch_carried(real_result, tmp_path):
    # The same batch latencies, but the current run's batches carry half as many requests: throughput halves.
    base = variant(real_result, tmp_path / "a", seed=1)
    halved = json.loads(base.read_text())
    halved["scenario"]["batch_size"] = real_result.scenario.batch_size // 2
    halved["summary"]["throughput"]["requests_per_s"] /= 2
    halved["point"]["spec_hash"] = "edited"
    cur = atomic_write_json(tmp_path / "b" / base.name, halved)
    (pair,) = compare_results([base], [cur]).pairs
    half = real_result.scenario.batch_size // 2
    assert f"the scenarios differ (batch_size: {real_result.scenario.batch_size} -> {half}): the change includes" in (
        " ".join(pair.notes)
    )
    throughput = pair.metric("throughput")
    low, high = throughput.interval
    assert throughput.ratio == pytest.approx(0.5) and low < -0.4 and high < -0.4  # around -50%, not around 0
    assert throughput.significant is True and throughput.verdict == "lower" and throughput.assessment == "worse"
    assert pair.metric("latency.p50").verdict == "same"


def test_a_pair_run_on_different_engines_says_so(real_result, tmp_path, capsys):
    base = variant(real_result, tmp_path / "a", seed=1)
    edited = json.loads(base.read_text())
    edited["scenario"]["engine"] = "native" if real_result.scenario.engine == "transformers" else "transformers"
    edited["point"]["spec_hash"] = "edited"
    cur = atomic_write_json(tmp_path / "b" / base.name, edited)
    (pair,) = compare_results([base], [cur]).pairs
    note = f"the scenarios differ (engine: {real_result.scenario.engine} -> {edited['scenario']['engine']})"
    assert any(n.startswith(note) for n in pair.notes), pair.notes
    # check prints it too: a gate failing on an engine change says why
    assert compare_cli(["check", "--baseline", str(base), "--fail-on", "flops:5%", str(cur)]) == 0
    assert f"NOTE tiny [default]: {note}" in capsys.readouterr().out
