"""`recbench validate-projections`: the published-measurement file, the workload model on a hand-checked case,
the physics check, and the command's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main
from bench.core.errors import InputError
from bench.cost.validation import (
    MEMORY_FRACTION,
    PublishedMeasurement,
    load_measurements,
    project_row,
    validate_projections,
)
from bench.hardware.engines import load_engines
from bench.hardware.tiers import load_tiers
from bench.models.analytic import kv_cache_bytes, weights_bytes
from bench.models.presets import get_preset

TIERS = load_tiers()


def row(**overrides: object) -> PublishedMeasurement:
    base = dict(id="r", tier="h100-sxm", gpu="H100", engine="test 1.0", engine_model="cuda-graphs", model="m",
                preset="llama-3.1-8b", dtype="bf16", batch=1, input_tokens=0, output_tokens=100,
                metric="output_tokens_per_s", value=100.0, unit="tok/s", source="https://example.org/x",
                date="2026")  # fmt: skip
    base.update(overrides)
    return PublishedMeasurement(**base)  # type: ignore[arg-type]


def test_the_data_file_covers_enough_rows_and_gpus_and_cites_each():
    rows = load_measurements()
    projectable = [r for r in rows if not r.skip]
    assert len(projectable) >= 12 and len({r.tier for r in projectable}) >= 4
    assert all(r.source.startswith("https://") and r.date for r in rows)
    assert all(r.tier in TIERS and r.engine_model in load_engines() for r in rows)


def test_every_row_beyond_2x_is_explained_and_physics_holds():
    summary = validate_projections(TIERS)
    assert summary.unexplained == []
    assert summary.physics_violations == []
    assert all(r.published_physics_ok for r in summary.rows)


def test_batch_1_decode_of_a_big_model_is_bandwidth_bound():
    # 8B bf16 at batch 1: every step streams the weights; nothing else comes close.
    tier = TIERS["h100-sxm"]
    projected = project_row(row(), tier, load_engines()["cuda-graphs"])
    assert projected.bound == "memory"
    step_s = 1 / projected.projected
    weights_s = weights_bytes(get_preset("llama-3.1-8b"), dtype="bf16") / tier.bandwidth_bytes_per_s
    assert weights_s <= step_s <= weights_s / tier.memory_efficiency * 1.05  # the LM head and KV reads add little


def test_faster_hardware_projects_faster_and_a_fixed_floor_binds_a_tiny_model():
    engine = load_engines()["cuda-graphs"]
    slow, fast = TIERS["l40s"], TIERS["h200"]
    assert project_row(row(), fast, engine).projected > project_row(row(), slow, engine).projected
    tiny = project_row(row(preset="tiny-llama"), fast, engine)
    arch = get_preset("tiny-llama")
    floor_s = engine.floor_s(forwards=1, ops_per_forward=arch.num_layers * engine.ops_per_layer + 9)
    assert tiny.bound == "launch" and tiny.projected == pytest.approx(1 / floor_s)


def test_batch_max_fills_the_memory_left_by_the_weights():
    tier = TIERS["h100-sxm"]
    arch = get_preset("llama-3.1-8b")
    projected = project_row(row(batch="max", input_tokens=128, output_tokens=128, dtype="fp8"), tier,
                            load_engines()["cuda-graphs"])  # fmt: skip
    room = tier.memory_bytes * MEMORY_FRACTION - weights_bytes(arch, dtype="fp8")
    assert projected.batch == int(room // kv_cache_bytes(arch, tokens=256, dtype="fp8"))


def test_a_bad_data_file_is_one_line_naming_the_row_and_field(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("measurements:\n  - {id: x, tier: h100-sxm}\n")
    with pytest.raises(InputError, match=rf"^{path}: measurements\.0\.gpu: Field required"):
        load_measurements(path)
    with pytest.raises(InputError, match="unknown tier"):
        validate_projections(TIERS, (row(tier="nope"),))


def test_the_command_prints_every_row_and_the_median(capsys):
    assert main(["validate-projections", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n| ") >= len(load_measurements())
    assert "median absolute error" in out and "physics:" in out
