"""`write_report` end to end on real (tiny) results: the files, the self-contained HTML, the Markdown, the CSV
columns, the capacity plan; the renderers' escaping; and (benchmark_run) the 200-result speed bar."""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.core.errors import InputError
from bench.cost.capacity import PlanSettings
from bench.cost.model import cost_table, row_dict
from bench.cost.projection import operating_point
from bench.hardware.environment import this_machine
from bench.hardware.tiers import Tier, load_tiers
from bench.report.build import (
    ENERGY_COLUMNS,
    LATENCY_COLUMNS,
    MEMORY_COLUMNS,
    PLAN_COLUMNS,
    WORK_COLUMNS,
    write_report,
)
from bench.report.render import Document, Heading, Paragraph, Span, Table, md_escape, render_html, render_markdown
from bench.results.reader import iter_result_paths, read_results
from tests.conftest import tiny_scenario_dict

IMG = '<img src="data:image/png;base64,'
STAGES = {"preprocess", "interest", "candidates", "scoring", "rank_feedback", "end_to_end"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A two-point batch-size sweep of the tiny scenario, run through the CLI once for the module."""
    root = tmp_path_factory.mktemp("report-results")
    scenario = root / "tiny-sweep.yaml"
    spec = tiny_scenario_dict(name="tiny-sweep", sweep={"batch_size": [1, 2]})
    scenario.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["run", str(scenario), "--results-dir", str(root / "results"), "--no-progress"]) == 0
    return root / "results"


# A catalogue CPU tier reshaped to this machine's fingerprint, so the tests price a measured tier on any CPU
# (--measured-on refuses a tier of another ISA level or size).
THIS_CPU = "test-this-cpu"


@pytest.fixture(scope="module")
def tiers() -> dict[str, Tier]:
    catalogue = load_tiers()
    fingerprint = this_machine()
    template = next(tier for tier in catalogue.values() if tier.kind == "cpu")
    this_cpu = dataclasses.replace(
        template, name=THIS_CPU, isa=fingerprint.isa, vcpus=fingerprint.logical_cores, match=()
    )
    return {THIS_CPU: this_cpu, **catalogue}


def cpu_tier(tiers: dict[str, Tier]) -> str:
    return THIS_CPU


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_report_writes_self_contained_html_markdown_csv_and_pngs(results, tiers, tmp_path):
    out = tmp_path / "report"
    written = write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers))

    names = {p.name for p in written}
    assert all(p.exists() and p.stat().st_size > 0 for p in written)
    assert {"report.html", "report.md", "costs.csv", "latency.csv", "memory.csv", "energy.csv"} <= names
    assert "plan.csv" not in names and not (out / "plan.csv").exists()
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    # batch size is swept (two points), model size and sequence length are not.
    assert "cost_vs_batch_size.png" in pngs
    assert not {"cost_vs_params.png", "cost_vs_prompt_tokens.png", "cost_per_tier.png"} & set(pngs)
    assert {"latency_breakdown.png", "memory.png", "energy.png"} <= set(pngs)
    assert all((out / name).read_bytes().startswith(b"\x89PNG") for name in pngs)

    html = (out / "report.html").read_text()
    assert html.count(IMG) == len(pngs)
    assert "<script" not in html.lower()
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=["']?(https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html  # no remote CSS or fonts
    assert "tiny-sweep" in html and "How to read this" in html
    assert "measured" in html and "projected" in html and "roofline" in html

    md = (out / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in md
    assert "How to read this" in md and "| tier |" not in md.split("## Cost per tier")[0]

    columns, rows = read_csv(out / "costs.csv")
    points = [operating_point(stored) for stored in read_results([results])]
    assert columns == list(row_dict(cost_table(points[:1], tiers).rows[0]))
    assert len(rows) == 2 * len(tiers)
    assert {row["basis"] for row in rows} == {"measured", "projected"}
    assert sum(row["basis"] == "measured" for row in rows) == 2  # each point, on the tier it ran on

    columns, rows = read_csv(out / "latency.csv")
    assert (
        columns
        == LATENCY_COLUMNS
        == ["result", "scenario", "point", "machine", "stage", "n", "p50_ms", "p90_ms", "p99_ms", "mean_ms"]
    )
    for point in ("batch_size=1", "batch_size=2"):
        stages = {row["stage"] for row in rows if row["point"] == point}
        assert stages >= STAGES
    assert all(float(row["p50_ms"]) <= float(row["p99_ms"]) for row in rows)

    columns, rows = read_csv(out / "memory.csv")
    assert columns == MEMORY_COLUMNS and len(rows) == 2
    assert all(int(row["estimate_total_bytes"]) > int(row["weights_bytes"]) > 0 for row in rows)

    columns, rows = read_csv(out / "work.csv")
    assert columns == WORK_COLUMNS and len(rows) == 2
    stored = {str(s.path): s.result for s in read_results([results])}
    for row in rows:  # the peak each utilisation is a share of, and how it was measured
        peak = stored[row["result"]].peak.gemm
        assert float(row["measured_gemm_peak_flops_per_s"]) == pytest.approx(peak.flops_per_s)
        assert row["gemm_peak_method"] == peak.method
    work_section = md.split("## LLM work and padding")[1].split("\n## ")[0]
    assert "| GEMM peak |" in work_section and "FLOP/s |" in work_section

    columns, rows = read_csv(out / "energy.csv")
    assert columns == ENERGY_COLUMNS and len(rows) == 2 * len(tiers)
    kinds = {row["tier"]: row["energy_kind"] for row in rows if row["energy_j_per_recommendation"]}
    assert set(kinds.values()) <= {"measured", "modelled"}
    # No energy counter on a CPU without RAPL: the measured tier's figure is modelled too, and says so.
    rapl = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    if not (rapl.exists() and os.access(rapl, os.R_OK)):
        assert set(kinds.values()) == {"modelled"}
        # ... and the report says why its figure differs from the utilisation-scaled one `show` prints.
        assert "scales TDP by the CPU utilisation it measured" in (out / "report.md").read_text()


def test_capacity_plan_names_the_cheapest_tier(results, tiers, tmp_path):
    out = tmp_path / "report"
    plan = PlanSettings(qps=100, slo_p99_ms=60_000, hours_per_day=12, headroom=0.25)
    written = write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers), plan=plan, figures=False)

    assert out / "plan.csv" in written
    columns, rows = read_csv(out / "plan.csv")
    assert columns == PLAN_COLUMNS
    assert {row["tier"] for row in rows} == set(tiers)
    cheapest = [row for row in rows if row["cheapest"] == "True"]
    assert len(cheapest) == 1 and cheapest[0]["meets_slo"] == "True"
    # Cheapest among rented tiers (owned hardware is listed, not chosen, without --include-owned).
    monthly = [float(row["rented_monthly_usd"]) for row in rows if row["rented_monthly_usd"]]
    assert float(cheapest[0]["rented_monthly_usd"]) == min(monthly)
    assert any(row["owned_monthly_usd"] for row in rows)  # the owned column is there, labelled

    html = (out / "report.html").read_text()
    assert f"Cheapest tier meeting the SLO: <strong>{cheapest[0]['tier']}</strong>" in html
    assert "no queueing" in html  # the plan's latency_basis caveat
    md = (out / "report.md").read_text()
    assert f"Cheapest tier meeting the SLO: **{md_escape(cheapest[0]['tier'])}**" in md


def test_the_order_of_the_inputs_changes_no_table(results, tiers, tmp_path):
    files = sorted(iter_result_paths([results]))
    plan = PlanSettings(qps=100, slo_p99_ms=60_000)
    write_report(files, tmp_path / "a", tiers=tiers, plan=plan, figures=False)
    write_report(files[::-1], tmp_path / "b", tiers=tiers, plan=plan, figures=False)
    for name in ("costs.csv", "plan.csv", "calibration.csv", "energy.csv", "latency.csv", "memory.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Calibration" in html and "median" in html


def test_tiers_that_do_not_fit_are_left_out_and_named(results, tiers, tmp_path, draw_only):
    draw_only("memory")  # where a tier that does not fit is marked; the other figures' captions name it
    gpu = next(tier for tier in tiers.values() if tier.kind == "gpu")
    small = {
        cpu_tier(tiers): tiers[cpu_tier(tiers)],
        gpu.name: gpu,
        "tiny-gpu": dataclasses.replace(gpu, name="tiny-gpu", memory_bytes=1000.0),
    }
    out = tmp_path / "report"
    write_report([results], out, tiers=small, measured_on=cpu_tier(tiers))

    _, rows = read_csv(out / "costs.csv")
    assert {row["fits"] for row in rows if row["tier"] == "tiny-gpu"} == {"False"}
    html = (out / "report.html").read_text()
    assert "tiny-gpu (does not fit in memory)" in html  # the cost figure's caption
    assert "DOES NOT FIT" not in html  # that is drawn into the memory figure, not written

    # No tier meets an impossible SLO: the plan says so rather than naming a cheapest tier.
    impossible = PlanSettings(qps=1, slo_p99_ms=1e-6)
    write_report([results], out, tiers=small, measured_on=cpu_tier(tiers), plan=impossible, figures=False)
    html = (out / "report.html").read_text()
    assert "No tier meets the SLO" in html and "Cheapest tier meeting the SLO" not in html


def test_single_point_gets_a_bar_chart_per_tier(results, tiers, tmp_path, draw_only):
    draw_only("cost_per_tier")  # the others: test_report_writes_self_contained_html_markdown_csv_and_pngs
    one = next(iter_result_paths([results]))
    written = write_report([one], tmp_path / "one", tiers=tiers)
    pngs = {p.name for p in written if p.suffix == ".png"}
    assert "cost_per_tier.png" in pngs
    assert not any(name.startswith("cost_vs_") for name in pngs)
    html = (tmp_path / "one" / "report.html").read_text()
    assert html.count(IMG) == len(pngs)


def test_bad_inputs_are_one_line_errors(results, tiers, tmp_path):
    with pytest.raises(InputError, match="unknown tier"):
        write_report([results], tmp_path, tiers=tiers, measured_on="no-such-tier")
    with pytest.raises(InputError, match=r"--qps: must be in \(0, 1e\+09\], got -1"):
        PlanSettings(qps=-1, slo_p99_ms=100)
    with pytest.raises(InputError, match="--hours-per-day"):
        PlanSettings(qps=1, slo_p99_ms=100, hours_per_day=25)
    with pytest.raises(InputError, match="no result files"):
        write_report([tmp_path], tmp_path / "out", tiers=tiers)


def test_renderers_escape_text():
    nasty = '<script>alert("x")</script> a|b *c* [d](e)'
    doc = Document("t <&>", [Heading(nasty), Paragraph([nasty, Span(nasty, strong=True)]), Table(["c|1"], [[nasty]])])
    html = render_html(doc)
    assert "<script>" not in html and "&lt;script&gt;" in html and "t &lt;&amp;&gt;" in html
    md = render_markdown(doc)
    assert "<script>" not in md
    table_row = next(line for line in md.splitlines() if "alert" in line and line.startswith("|"))
    assert table_row.count("|") - table_row.count("\\|") == 2  # the cell's pipe cannot split the row


@pytest.mark.benchmark_run
def test_report_on_200_results_under_15_s(results, tiers, tmp_path):
    source = next(iter_result_paths([results]))
    template = json.loads(source.read_text())
    folder = tmp_path / "many" / template["machine"]
    folder.mkdir(parents=True)
    for i in range(200):
        result = copy.deepcopy(template)
        batch = 1 + i % 40
        result["scenario"]["batch_size"] = batch
        result["point"]["key"] = f"batch_size={batch},copy={i}"
        result["point"]["spec_hash"] = f"{i:016x}"
        (folder / f"copy-{i:03d}.json").write_text(json.dumps(result))

    started = time.perf_counter()
    written = write_report(
        [tmp_path / "many"],
        tmp_path / "report",
        tiers=tiers,
        measured_on=cpu_tier(tiers),
        plan=PlanSettings(qps=100, slo_p99_ms=1000),
    )
    elapsed = time.perf_counter() - started
    print(f"\nwrite_report on 200 results x {len(tiers)} tiers: {elapsed:.2f} s, {len(written)} files")
    assert elapsed < 15.0
    assert (tmp_path / "report" / "report.html").read_text().count(IMG) == sum(p.suffix == ".png" for p in written)


def test_plan_prints_the_chosen_results_warnings_and_a_weak_p99(results, capsys):
    assert main(["plan", str(results), "--qps", "10", "--slo-p99-ms", "60000"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "warning:" in out and "chance_level" in out  # random weights, recorded in each result
    assert "weak p99" in out and "isolated batches" in out  # a tiny run's p99 rests on few batches
    assert "rented/mo" in out and "owned/mo" in out
    # A tiny model is launch-bound on every GPU tier: the rows say so, and the caption says why they tie.
    assert "launch-bound; weak p99" in out and "so such tiers differ only in price" in out


def test_a_report_written_again_into_its_folder_removes_only_its_own_stale_files(results, tiers, tmp_path):
    out = tmp_path / "report"
    plan = PlanSettings(qps=100, slo_p99_ms=60_000)
    # PNGs go the same way as plan.csv; figures are left out to keep the suite quick.
    write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers), plan=plan, figures=False)
    assert (out / "plan.csv").exists()
    (out / "notes.txt").write_text("the user's own file")
    second = write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers), figures=False)
    assert not (out / "plan.csv").exists()  # nothing left from the first report
    assert {p.name for p in out.iterdir()} == {p.name for p in second} | {"notes.txt", ".recbench-report.json"}
    # A file edited since the report wrote it, and names the manifest was made to list, are left alone.
    write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers), plan=plan, figures=False)
    (out / "plan.csv").write_text("my own edits")
    manifest = json.loads((out / ".recbench-report.json").read_text())
    (out / "README.md").write_text("someone else's")
    manifest |= {"README.md": hashlib.sha256(b"other").hexdigest(), "notes.txt": "", "../x.csv": ""}
    (out / ".recbench-report.json").write_text(json.dumps(manifest))
    write_report([results], out, tiers=tiers, measured_on=cpu_tier(tiers), figures=False)
    assert (out / "plan.csv").read_text() == "my own edits" and (out / "README.md").exists()
    assert (out / "notes.txt").exists()


def test_plan_takes_the_newest_run_of_each_point_as_the_report_does(results, tmp_path):
    from bench.cost.api import load_points

    folder = tmp_path / "results" / "m"
    folder.mkdir(parents=True)
    files = sorted(iter_result_paths([results]))
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    rerun = json.loads(files[0].read_text())  # the same point measured again, a day later
    measured = datetime.fromisoformat(rerun["created_at"])
    rerun["created_at"] = (measured + timedelta(days=1)).isoformat()
    rerun_path = folder / "rerun.json"
    rerun_path.write_text(json.dumps(rerun))
    with pytest.warns(UserWarning, match=r"1 older run\(s\) of points measured again are not used, e\.g\. .*"):
        points = load_points([tmp_path / "results"])
    assert sorted(Path(p.path).name for p in points) == sorted(["rerun.json", files[1].name])


def test_a_newer_run_with_an_edited_scenario_is_named_as_such(results, tmp_path):
    """A copied scenario with only its engine flipped keeps the old name: plan, report and the frame treat it as a
    re-run of the point, and say what changed, so the user can rename one to keep both."""
    from bench.cost.api import load_points
    from bench.results.frame import load_results_frame

    folder = tmp_path / "results" / "m"
    folder.mkdir(parents=True)
    original = sorted(iter_result_paths([results]))[0]
    (folder / original.name).write_bytes(original.read_bytes())
    edited = json.loads(original.read_text())
    before = edited["scenario"].get("engine", "transformers")
    after = "native" if before == "transformers" else "transformers"
    edited["scenario"]["engine"], edited["point"]["spec_hash"] = after, "edited"
    edited["created_at"] = (datetime.fromisoformat(edited["created_at"]) + timedelta(days=1)).isoformat()
    (folder / "edited.json").write_text(json.dumps(edited))
    with pytest.warns(UserWarning, match=rf"its scenario differs \(engine: {before} -> {after}\): give one"):
        load_points([tmp_path / "results"])
    frame = load_results_frame(tmp_path / "results")
    assert sorted(frame["engine"]) == sorted([before, after])


def test_the_work_table_carries_a_results_note_on_its_llm_figures():
    from bench.report.render import _work_blocks

    row = {"scenario": "s", "point": "default", "batching": "packed", "prompt_padding_fraction": 0.0,
           "padding_waste": 0.0, "achieved_flops_per_s_executed": 2e11, "achieved_flops_per_s_useful": 2e11,
           "useful_fraction_of_measured_gemm_peak": 1.4, "measured_gemm_peak_flops_per_s": 1.4e11,
           "note": "achieved exceeds the measured GEMM peak: the peak was probably measured while busy"}  # fmt: skip
    [_, table] = _work_blocks([row, {**row, "point": "other"}])
    assert "s [default], s [other]: achieved exceeds the measured GEMM peak" in table.caption
    assert table.caption.count("achieved exceeds") == 1  # said once for the points it is on
    [_, quiet] = _work_blocks([{**row, "note": None}])
    assert "exceeds" not in quiet.caption
