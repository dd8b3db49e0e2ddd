"""`recbench projection-check` on hand-made CPU and GPU points: pairing by sweep point, the per-stage split, and
the command's refusal without GPU results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli import main
from bench.core.stages import Stage
from bench.cost.crosscheck import BATCH, SCORING_HOST, SCORING_LLM, projection_checks
from bench.hardware.fingerprint import Fingerprint
from bench.hardware.tiers import load_tiers
from tests.points import AVX2_EPYC, llm, point

TIERS = load_tiers()
H100_HOST = replace(AVX2_EPYC, gpus=("NVIDIA H100 80GB HBM3",))


def gpu_point(**overrides: object):
    base = dict(path="gpu.json", device="cuda", device_name="NVIDIA H100 80GB HBM3", fingerprint=H100_HOST,
                dtype="bfloat16", llm=llm(measured_s=0.004, host_s=0.002), batch_p50_s=0.0075, batch_p99_s=0.009,
                sweep_values={"model": "m", "device": "cuda"})  # fmt: skip
    base.update(overrides)
    return point(**base)


def test_a_gpu_result_is_checked_from_its_cpu_partner_and_from_itself():
    cpu = point(path="cpu.json", sweep_values={"model": "m", "device": "cpu"}, llm=llm(host_s=0.003))
    other = point(path="other.json", sweep_values={"model": "other", "device": "cpu"})
    gpu = gpu_point()
    checks = projection_checks([other, cpu, gpu], TIERS)
    assert [(c.kind, c.source.path, c.tier) for c in checks] == [
        ("from the CPU", "cpu.json", "h100-sxm"),
        ("from itself", "gpu.json", "h100-sxm"),
    ]
    from_cpu = {s.stage: s for s in checks[0].stages}
    # Host work keeps the CPU's medians; the LLM part is the roofline on the H100.
    assert from_cpu[str(Stage.PREPROCESS)].projected_s == pytest.approx(0.001)
    assert from_cpu[SCORING_HOST].projected_s == pytest.approx(0.003)
    assert from_cpu[SCORING_LLM].measured_s == pytest.approx(0.004)
    batch = from_cpu[BATCH]
    assert batch.projected_s == pytest.approx(0.001 + 0.003 + from_cpu[SCORING_LLM].projected_s)
    assert batch.error == pytest.approx(batch.projected_s / 0.0075 - 1)


def test_a_gpu_the_catalogue_does_not_know_is_left_out():
    unknown = replace(H100_HOST, gpus=("Imaginary GPU 9000",))
    assert projection_checks([gpu_point(device_name="Imaginary GPU 9000", fingerprint=unknown)], TIERS) == []
    assert isinstance(unknown, Fingerprint)


def test_the_command_refuses_results_without_a_gpu(capsys):
    fixtures = Path(__file__).parent / "fixtures" / "results-v1"
    assert main(["projection-check", str(fixtures)]) == 2
    err = capsys.readouterr().err
    assert "no result measured on a catalogue GPU" in err and err.count("\n") == 1
