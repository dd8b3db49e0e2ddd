"""Ranking quality against cost: Pareto marking, the quality CSV, levers paired with their baselines (paired NDCG
change and its significance), a CPU-only lever kept off GPU tiers, `plan --min-ndcg`, and the report's figure,
tables and note. Hand-made points and stored fixture results: no model runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.errors import InputError
from bench.core.kinds import Basis
from bench.cost.capacity import PlanSettings, plan_capacity
from bench.cost.levers import NO_BASELINE, PROJECTED_TIER_NOTE, compare_levers, lever_dicts
from bench.cost.model import TierCost, cost_table
from bench.cost.projection import TierTiming
from bench.cost.quality import QUALITY_COLUMNS, pareto_flags, quality_costs, quality_dict
from bench.hardware.tiers import load_tiers
from bench.loop.ranking import chance_ndcg
from bench.report.build import write_report
from bench.results.reader import load_result
from bench.scenarios.spec import Optimize
from tests.points import evaluation, point

TIERS = load_tiers()
FIXTURES = Path(__file__).parent / "fixtures" / "results-v1" / "v1-fixture-machine"
BASE_NDCG = [1.0, 0.0, 0.5, 0.0, 0.63, 0.0, 1.0, 0.43] * 4  # 32 users, mean 0.445


def priced(p, tier: str, cost: float | None, basis: Basis = Basis.MEASURED) -> TierCost:
    timing = TierTiming(tier=tier, basis=basis, dtype="float32", fits=True, memory_need_bytes=1,
                        memory_capacity_bytes=2.0, batch_p50_s=1.0)  # fmt: skip
    return TierCost(point=p, timing=timing, rented_cost_per_1m_usd=cost)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


# ------------------------------------------------------------------------------------------ Pareto, CSV


def test_pareto_marks_only_points_no_other_is_cheaper_and_better_than():
    #            cheap/poor   dear/good    dominated (dearer and worse than both)   tie on cost, better
    pairs = [(1.0, 0.30), (3.0, 0.50), (4.0, 0.40), (1.0, 0.35)]
    assert pareto_flags(pairs) == [False, True, False, True]  # (1.0, 0.30) loses to (1.0, 0.35) at equal cost
    assert pareto_flags([(2.0, 0.4), (2.0, 0.4)]) == [True, True]  # equal points are both optimal


def test_quality_costs_flag_the_front_over_every_tier_and_lever_and_fill_the_csv():
    base = point(path="base.json", optimize="baseline", evaluation=evaluation([1.0, 0.0] * 8))  # NDCG 0.5
    int8 = point(path="int8.json", optimize="int8_dynamic", evaluation=evaluation([0.8, 0.0] * 8))  # NDCG 0.4
    unevaluated = point(path="none.json", optimize="compile")
    rows = [
        priced(base, "cpu", 2.0),  # same NDCG as base on gpu, dearer: dominated
        priced(int8, "cpu", 0.3),  # the cheapest: on the front despite lower NDCG
        priced(base, "gpu", 0.5, Basis.PROJECTED),  # on the front
        priced(int8, "gpu", 3.0, Basis.PROJECTED),  # dearer and worse than both front points
        priced(int8, "tpu", None, Basis.PROJECTED),  # no price: listed, never drawn nor on the front
        priced(unevaluated, "cpu", 0.01),  # cheapest of all, but no quality: takes no part
    ]
    costs = quality_costs(rows)
    flags = {(q.point.path, q.row.timing.tier): q.pareto for q in costs.items}
    assert flags == {("base.json", "cpu"): False, ("int8.json", "cpu"): True, ("base.json", "gpu"): True,
                     ("int8.json", "gpu"): False, ("int8.json", "tpu"): False}  # fmt: skip
    assert [p.path for p in costs.unevaluated] == ["none.json"]
    assert len(costs.drawn) == 4 and costs.groups == [(5, 10)]

    csv_rows = [quality_dict(q) for q in costs.items]
    assert all(list(row) == QUALITY_COLUMNS for row in csv_rows)
    first = csv_rows[0]
    assert first["lever"] == "baseline" and first["tier"] == "cpu" and first["basis"] == "measured"
    assert first["ndcg_mean"] == pytest.approx(0.5) and first["users"] == 16
    assert first["ndcg_ci_low"] < 0.5 < first["ndcg_ci_high"]
    assert first["chance_ndcg"] == pytest.approx(chance_ndcg(5, 10))
    assert first["rented_cost_per_1m_recommendations_usd"] == 2.0 and first["pareto"] is False
    gpu = next(r for r in csv_rows if (r["result"], r["tier"]) == ("base.json", "gpu"))
    assert gpu["basis"] == "projected" and gpu["pareto"] is True
    unpriced = next(r for r in csv_rows if r["tier"] == "tpu")
    assert unpriced["rented_cost_per_1m_recommendations_usd"] is None and unpriced["note"] == "no rented price"


def test_labels_name_the_lever_and_whatever_else_varies():
    a = point(path="a.json", optimize="baseline", scoring_mode="likelihood", evaluation=evaluation([0.5] * 4))
    b = point(path="b.json", optimize="baseline", scoring_mode="verbalizer", evaluation=evaluation([0.5] * 4))
    labels = {q.point.path: q.label for q in quality_costs([priced(a, "cpu", 1.0), priced(b, "cpu", 1.0)]).items}
    assert labels == {"a.json": "baseline, scoring likelihood", "b.json": "baseline, scoring verbalizer"}


# ------------------------------------------------------------------------------------------------ levers


def lever_points() -> dict[str, object]:
    shifted = [max(0.0, v - 0.1) if v > 0 else 0.0 for v in BASE_NDCG]  # every user that scored loses 0.1
    return {
        "base": point(path="base.json", lever_key="K", created_at="2026-11-28T00:00:00+00:00",
                      evaluation=evaluation(BASE_NDCG), batch_p50_s=2.0),
        "older": point(path="older.json", lever_key="K", created_at="2026-11-27T00:00:00+00:00"),
        "elsewhere": point(path="elsewhere.json", lever_key="K", machine="other-machine",
                           created_at="2026-11-29T00:00:00+00:00"),
        "int8": point(path="int8.json", lever_key="K", optimize="int8_dynamic", cpu_only="int8_dynamic",
                      evaluation=evaluation(shifted), batch_p50_s=1.5),
        "eager": point(path="eager.json", lever_key="K2", optimize="attention=eager"),
    }  # fmt: skip


def test_a_lever_is_paired_with_the_newest_identical_baseline_of_its_machine():
    p = lever_points()
    rows = [priced(p[name], "cpu", cost) for name, cost in
            (("base", 2.0), ("older", 9.0), ("elsewhere", 9.0), ("int8", 1.5), ("eager", 1.0))]  # fmt: skip
    int8, eager = compare_levers(rows)
    assert int8.lever is p["int8"] and int8.baseline is p["base"]  # not the older run, nor another machine's
    assert int8.p50_change == pytest.approx(-0.25)
    measured_pair = int8.measured()
    assert measured_pair is not None and measured_pair[1] is not None
    assert measured_pair[1].point is p["base"]
    [csv_row] = lever_dicts(int8)
    assert csv_row["baseline_result"] == "base.json" and csv_row["rented_cost_change"] == pytest.approx(-0.25)
    assert csv_row["batch_p50_ms"] == pytest.approx(1500.0) and csv_row["baseline_batch_p50_ms"] == 2000.0
    assert csv_row["basis"] == "measured" and csv_row["note"] == ""

    # A lever whose scenario matches no baseline says so, everywhere.
    assert eager.baseline is None and eager.quality is None and eager.quality_note == NO_BASELINE
    [eager_row] = lever_dicts(eager)
    assert eager_row["quality_verdict"] == NO_BASELINE and eager_row["note"] == NO_BASELINE
    assert eager_row["rented_cost_change"] is None


def test_a_lever_swept_with_the_other_kind_held_fixed_is_paired_with_the_point_that_holds_it():
    packed = "padding=packed"
    # A batching sweep with eager attention held fixed: packed against eager attention, padded.
    eager = point(path="eager.json", lever_key="K2", optimize="attention=eager", batch_p50_s=2.0)
    eager_packed = point(path="eager-packed.json", lever_key="K2", optimize="attention=eager", batching=packed,
                         batch_p50_s=1.0)  # fmt: skip
    # An optimize sweep on packed batches: prepack against packed batches without optimize levers.
    plain_packed = point(path="packed.json", lever_key="K3", batching=packed)
    prepack_packed = point(path="prepack-packed.json", lever_key="K3", optimize="prepack", batching=packed)
    lonely = point(path="lonely.json", lever_key="K4", optimize="prepack", batching=packed)
    rows = [priced(q, "cpu", 1.0) for q in (eager, eager_packed, plain_packed, prepack_packed, lonely)]
    comparisons = compare_levers(rows)
    assert {c.lever.path: c.baseline.path if c.baseline else None for c in comparisons} == {
        "eager.json": None, "eager-packed.json": "eager.json", "packed.json": None,
        "prepack-packed.json": "packed.json", "lonely.json": None,
    }  # fmt: skip
    eager_vs_padded = next(c for c in comparisons if c.lever is eager_packed)
    assert (
        eager_vs_padded.p50_change == pytest.approx(-0.5) and eager_vs_padded.label == "attention=eager+padding=packed"
    )
    [csv_row] = lever_dicts(eager_vs_padded)[:1]
    assert (csv_row["optimize"], csv_row["batching"]) == ("attention=eager", packed)
    # With a plain point measured too, every lever is priced against it (the default levers come first).
    plain = point(path="plain.json", lever_key="K2")
    comparisons = compare_levers([priced(q, "cpu", 1.0) for q in (plain, eager, eager_packed)])
    assert {c.lever.path: c.baseline.path for c in comparisons if c.baseline} == {
        "eager.json": "plain.json", "eager-packed.json": "plain.json",
    }  # fmt: skip


def test_the_quality_change_is_paired_over_users_and_significant_only_when_its_interval_excludes_zero():
    p = lever_points()
    [int8, _] = compare_levers([priced(p[n], "cpu", 1.0) for n in ("base", "int8", "eager")])
    delta = int8.quality
    assert delta is not None and delta.users == 32
    scoring_users = sum(v > 0 for v in BASE_NDCG)
    assert delta.mean == pytest.approx(-0.1 * scoring_users / 32)
    assert delta.high < 0 and delta.significant and delta.verdict == "lower (significant)"

    # Changes that cancel out over the users: the interval spans 0.
    noisy = [v + (0.2 if i % 2 else -0.2) if 0.2 <= v <= 0.8 else v for i, v in enumerate(BASE_NDCG)]
    wobbly = point(path="w.json", lever_key="K", optimize="compile", evaluation=evaluation(noisy))
    [comparison] = compare_levers([priced(p["base"], "cpu", 1.0), priced(wobbly, "cpu", 1.0)])
    q = comparison.quality
    assert q is not None and q.low < 0 < q.high
    assert not q.significant and q.verdict == "not significant"

    # Different users cannot be paired: n/a with the reason.
    others = evaluation(BASE_NDCG, user_ids=[f"x{i}" for i in range(32)])
    strangers = point(path="s.json", lever_key="K", optimize="compile", evaluation=others)
    [comparison] = compare_levers([priced(p["base"], "cpu", 1.0), priced(strangers, "cpu", 1.0)])
    assert comparison.quality is None and comparison.quality_note == "n/a: evaluated on different users"
    unevaluated = point(path="u.json", lever_key="K", optimize="compile")
    [comparison] = compare_levers([priced(p["base"], "cpu", 1.0), priced(unevaluated, "cpu", 1.0)])
    assert comparison.quality_note == "n/a: the lever has no quality evaluation"


def test_a_cpu_only_lever_is_never_projected_onto_a_gpu():
    tiers = {name: TIERS[name] for name in ("aws-c6a.large", "l4")}
    int8 = point(optimize="int8_dynamic", cpu_only="int8_dynamic", batch_p50_s=0.5, batch_p99_s=0.6)
    rows = {r.timing.tier: r for r in cost_table([int8], tiers).rows}
    assert rows["aws-c6a.large"].basis == Basis.MEASURED and rows["aws-c6a.large"].rented_cost_per_1m_usd
    gpu = rows["l4"]
    assert gpu.timing.batch_p50_s is None and gpu.rented_cost_per_1m_usd is None
    assert gpu.notes == ["optimize int8_dynamic runs on a CPU only: not projected onto a GPU"]
    # The plan has no latency to judge there: not "over" the SLO, but no verdict, and why.
    from bench.console.plan import slo_status

    [plan] = plan_capacity(cost_table([int8], tiers).rows, PlanSettings(qps=1, slo_p99_ms=1000))
    by_tier = {t.tier: t for t in plan.tiers}
    assert [slo_status(by_tier[name]) for name in ("aws-c6a.large", "l4")] == ["meets", "n/a"]
    assert "CPU only: not projected onto a GPU" in by_tier["l4"].reason
    slow = point(batch_p50_s=5.0, batch_p99_s=6.0)
    [over] = plan_capacity(cost_table([slow], tiers).rows, PlanSettings(qps=1, slo_p99_ms=1000))
    assert slo_status({t.tier: t for t in over.tiers}["aws-c6a.large"]) == "over"


# ----------------------------------------------------------------------------------------- plan --min-ndcg


def plan_points() -> list:
    def lever(name: str, optimize: str, ndcg: list[float] | None, p50: float, **extra: object):
        return point(path=f"{name}.json", point=f"optimize={name}", optimize=optimize, workload=f"optimize={name}",
                     sweep_values={"optimize": name}, evaluation=evaluation(ndcg) if ndcg else None,
                     batch_p50_s=p50, batch_p99_s=p50 * 1.2, **extra)  # fmt: skip

    return [
        lever("baseline", "baseline", [1.0, 0.0] * 8, 1.0),  # NDCG 0.5
        lever("int8", "int8_dynamic", [0.9, 0.0] * 8, 0.5, cpu_only="int8_dynamic"),  # NDCG 0.45, twice as fast
        lever("eager", "attention=eager", [0.4, 0.0] * 8, 0.8),  # NDCG 0.2
        lever("mystery", "compile", None, 0.1),  # the fastest, quality unknown
    ]


def test_min_ndcg_plans_the_cheapest_tier_and_lever_among_points_that_reach_the_bar():
    tiers = {name: TIERS[name] for name in ("aws-c6a.large", "l4")}
    rows = cost_table(plan_points(), tiers).rows
    # Without a bar each lever is its own workload, as before.
    assert len(plan_capacity(rows, PlanSettings(qps=10, slo_p99_ms=2000))) == 4

    [plan] = plan_capacity(rows, PlanSettings(qps=10, slo_p99_ms=2000, min_ndcg=0.4))
    bar = plan.quality
    assert bar is not None and plan.scenario == "s"  # the levers are a choice within one plan
    assert [p.path for p in bar.qualified] == ["baseline.json", "int8.json"]
    assert [p.path for p in bar.below] == ["eager.json"] and [p.path for p in bar.unevaluated] == ["mystery.json"]
    chosen = {t.tier: t.chosen.point.path for t in plan.tiers if t.chosen}
    assert chosen == {"aws-c6a.large": "int8.json", "l4": "baseline.json"}  # int8 is CPU-only
    notes = bar.notes()
    assert notes[0].startswith("quality bar NDCG >= 0.4: ") and "the mean, not the lower end" in notes[0]
    assert notes[1] == "1 operating point(s) below the bar, excluded: optimize=eager (NDCG@5 0.200 [0.100, 0.300])"
    assert notes[2].startswith("1 operating point(s) without a quality evaluation, excluded")

    [strict] = plan_capacity(rows, PlanSettings(qps=10, slo_p99_ms=2000, min_ndcg=0.48))
    assert {t.chosen.point.path for t in strict.tiers if t.chosen} == {"baseline.json"}
    [none] = plan_capacity(rows, PlanSettings(qps=10, slo_p99_ms=2000, min_ndcg=0.9))
    assert none.quality is not None and not none.quality.qualified and none.tiers == [] and none.cheapest is None


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan")])
def test_min_ndcg_outside_zero_to_one_is_refused(bad):
    with pytest.raises(InputError, match=r"^--min-ndcg: must be in \[0, 1\]"):
        PlanSettings(qps=1, slo_p99_ms=100, min_ndcg=bad)


def test_plan_min_ndcg_on_the_command_line(capsys):
    assert main(["plan", str(FIXTURES), "--qps", "1", "--slo-p99-ms", "100", "--min-ndcg", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --min-ndcg: must be in [0, 1] (an NDCG), got 1.5\n"
    assert main(["report", str(FIXTURES), "-o", "/nonexistent/x", "--min-ndcg", "0.2"]) == 2
    assert "--min-ndcg" in capsys.readouterr().err

    # Results without an evaluation: excluded, and the plan says in one line that nothing qualifies (exit 0).
    assert main(["plan", str(FIXTURES / "20261127T234357-quickstart-default.json"), "--qps", "1",
                 "--slo-p99-ms", "100000", "--min-ndcg", "0.1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out == (
        "quickstart: no operating point meets the quality bar (NDCG >= 0.1): 0 below it, 1 without a quality "
        "evaluation\n"
    )


# ------------------------------------------------------------------------------------------------ report


def write_variant(source: str, folder: Path, name: str, *, optimize: dict | None = None,
                  ndcg: list[float] | None = None) -> Path:  # fmt: skip
    """A fixture result as a lever (its `optimize` set, its point key told apart) and/or with an evaluation."""
    result = load_result(FIXTURES / source)
    update: dict = {}
    if optimize is not None:
        update["scenario"] = result.scenario.model_copy(update={"optimize": Optimize(**optimize)})
        update["point"] = result.point.model_copy(update={"key": f"{result.point.key},{Optimize(**optimize).label}"})
    if ndcg is not None:
        update["quality"] = result.quality.model_copy(update={"evaluation": evaluation(ndcg)})
    path = folder / f"{name}.json"
    path.write_text(result.model_copy(update=update).model_dump_json())
    return path


def test_report_draws_quality_against_cost_and_tables_the_levers(tmp_path, draw_only):
    draw_only("quality_vs_cost")  # the report's other figures are drawn in test_report
    results = tmp_path / "results"
    results.mkdir()
    worse = [max(0.0, v - 0.1) if v > 0 else 0.0 for v in BASE_NDCG]
    write_variant("20261129T003854-v1-verbalizer-batch_size=1.json", results, "a", ndcg=BASE_NDCG)
    write_variant("20261129T003856-v1-verbalizer-batch_size=2.json", results, "b", ndcg=BASE_NDCG)
    write_variant("20261129T003856-v1-verbalizer-batch_size=2.json", results, "b-int8",
                  optimize={"quantize": "int8_dynamic"}, ndcg=worse)  # fmt: skip
    write_variant("20261129T003857-v1-likelihood-default.json", results, "c-eager", optimize={"attention": "eager"})

    out = tmp_path / "report"
    written = write_report([results], out, tiers=TIERS, plan=PlanSettings(qps=1, slo_p99_ms=1e5, min_ndcg=0.3))
    assert out / "quality_vs_cost.png" in written
    assert (out / "quality_vs_cost.png").read_bytes().startswith(b"\x89PNG")

    columns, rows = read_csv(out / "quality.csv")
    assert columns == QUALITY_COLUMNS and len(rows) == 3 * len(TIERS)  # the three evaluated results, every tier
    assert sum(row["basis"] == "measured" for row in rows) == 3
    assert any(row["pareto"] == "True" for row in rows)
    int8_gpu = [r for r in rows if r["optimize"] == "int8_dynamic" and TIERS[r["tier"]].kind == "gpu"]
    assert int8_gpu and all(not r["rented_cost_per_1m_recommendations_usd"] for r in int8_gpu)
    assert {r["pareto"] for r in int8_gpu} == {"False"} and "CPU only" in int8_gpu[0]["note"]

    _, levers = read_csv(out / "levers.csv")
    assert len(levers) == 2 * len(TIERS)  # two levers, every tier
    # A projected CPU tier's row carries the measured latency beside its own projected cost, and says so.
    projected_cpu = [r for r in levers if r["basis"] == "projected" and TIERS[r["tier"]].kind == "cpu"]
    assert projected_cpu and {r["note"] for r in projected_cpu if r["baseline_point"]} == {PROJECTED_TIER_NOTE}
    int8 = [r for r in levers if r["optimize"] == "int8_dynamic"]
    assert {r["baseline_point"] for r in int8} == {"batch_size=2"}  # not batch_size=1: equal but for optimize
    assert {r["quality_verdict"] for r in int8} == {"lower (significant)"}
    assert float(int8[0]["delta_ndcg_ci_high"]) < 0
    eager = [r for r in levers if r["optimize"] == "attention=eager"]
    assert {r["quality_verdict"] for r in eager} == {NO_BASELINE} and not any(r["baseline_point"] for r in eager)

    md = (out / "report.md").read_text()
    levers_section = md.split("## Levers")[1].split("\n## ")[0]
    assert "int8\\_dynamic" in levers_section and "lower (significant)" in levers_section
    assert "n/a: int8\\_dynamic runs on a CPU only" in levers_section
    assert "no baseline measured" in levers_section
    assert "Quality bar: NDCG \\>= 0.3" in md and "Cheapest tier and lever meeting the SLO and the quality bar" in md
    html = (out / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == sum(p.suffix == ".png" for p in written)
    assert "Ranking quality (NDCG) against cost per 1M recommendations" in html


def test_report_without_evaluations_says_what_quality_needs(tmp_path, draw_only):
    draw_only()  # which figures, not how they look
    out = tmp_path / "report"
    written = write_report([FIXTURES / "20261127T234357-quickstart-default.json"], out, tiers=TIERS)
    assert not (out / "quality_vs_cost.png").exists() and "quality_vs_cost.png" not in {p.name for p in written}
    md = (out / "report.md").read_text()
    note = md.split("## Quality against cost")[1].strip().splitlines()[0]
    assert note.startswith("*No result has a quality evaluation: quality against cost needs \\`evaluation.users\\`")
    assert "## Levers" not in md
    columns, rows = read_csv(out / "quality.csv")
    assert columns == QUALITY_COLUMNS and rows == []
