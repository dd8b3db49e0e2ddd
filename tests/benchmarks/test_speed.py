"""Speed bars the harness must meet on a 2-core machine (run with `make bench`; not in the default suite).

Each test prints the figures it measured, so `make bench` output can be quoted: pytest -s shows them.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from bench.core.stages import Stage
from bench.models.build import build_random_model
from bench.models.presets import get_preset
from bench.results.model import Result
from bench.results.reader import load_result
from bench.trackers.latency import LatencyTracker

pytestmark = pytest.mark.benchmark_run
REPO = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


def run_recbench(scenario: Path, results: Path) -> tuple[float, Result]:
    """Run a scenario in a fresh process, as a user would; returns (wall seconds, its last point's result)."""
    wall, written = run_recbench_points(scenario, results)
    return wall, written[-1]


def run_recbench_points(scenario: Path, results: Path) -> tuple[float, list[Result]]:
    """Run a scenario in a fresh process, as a user would; returns (wall seconds, every point's result)."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(scenario), "--results-dir", str(results), "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - started
    written = [line.removeprefix("wrote ") for line in completed.stdout.splitlines() if line.startswith("wrote ")]
    return wall, [load_result(Path(path)) for path in written]


def test_qwen_half_billion_builds_in_under_3_s():
    timings = []
    for seed in range(3):
        gc.collect()
        started = time.perf_counter()
        model = build_random_model(get_preset("qwen2.5-0.5b"), dtype=torch.float32, device=CPU, seed=seed)
        timings.append(time.perf_counter() - started)
        del model
    print(f"\nqwen2.5-0.5b random build: {[round(t, 2) for t in timings]} s, median {statistics.median(timings):.2f} s")
    assert statistics.median(timings) < 3.0


def test_stage_timing_costs_under_2_percent_of_a_forward():
    model = build_random_model(get_preset("tiny-llama"), dtype=torch.float32, device=CPU, seed=0).model
    ids = torch.randint(0, 8000, (4, 512))
    bare, tracked = [], []
    tracker = LatencyTracker(CPU)
    with torch.inference_mode():
        model(input_ids=ids, logits_to_keep=1)
        for _ in range(15):  # interleaved, so drift in machine load hits both alike
            started = time.perf_counter()
            model(input_ids=ids, logits_to_keep=1)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            with tracker.stage("llm_forward"):
                model(input_ids=ids, logits_to_keep=1)
            tracked.append(time.perf_counter() - started)
    empty = []
    for _ in range(2000):
        started = time.perf_counter()
        with tracker.stage("empty"):
            pass
        empty.append(time.perf_counter() - started)
    forward = statistics.median(bare)
    per_call = statistics.median(empty)
    difference = (statistics.median(tracked) - forward) / forward
    print(
        f"\nforward median {forward * 1e3:.1f} ms bare, {statistics.median(tracked) * 1e3:.1f} ms tracked "
        f"({difference * 100:+.2f}%, noise); stage enter+exit {per_call * 1e6:.2f} us = "
        f"{per_call / forward * 100:.4f}% of a forward"
    )
    assert per_call / forward < 0.02


def test_harness_overhead_of_the_quickstart_is_under_30_s(tmp_path):
    wall, result = run_recbench(REPO / "scenarios" / "quickstart.yaml", tmp_path)
    timed = sum(result.latency.samples[Stage.END_TO_END])
    print(f"\nquickstart: wall {wall:.1f} s, timed stage work {timed:.1f} s, harness {wall - timed:.1f} s")
    assert wall - timed < 30


def test_packing_and_bucketing_cut_the_padding_of_mixed_length_prompts(tmp_path):
    """Issue 13's padding figures: scenarios/sweep-padding.yaml (batch 8, long-tailed histories) with batches padded
    to the longest prompt, bucketed by length, and packed without padding; the same requests each time."""
    _, results = run_recbench_points(REPO / "scenarios" / "sweep-padding.yaml", tmp_path)
    by_padding = {result.scenario.batching.padding: result for result in results}
    print(f"\nsweep-padding, {results[0].work.requests} requests of {results[0].work.prompt_tokens_mean:.0f} prompt "
          f"tokens on average (up to {results[0].work.prompt_tokens_max}):")  # fmt: skip
    for padding, result in by_padding.items():
        llm = result.summary.flops.llm
        print(
            f"  {padding}: {result.work.prompt_padding_fraction:.1%} of prompt positions and {llm.padding_waste:.1%} "
            f"of LLM FLOPs on padding; {result.summary.throughput.requests_per_s:.2f} requests/s; useful "
            f"{llm.useful_achieved_flops_per_s / 1e9:.1f} GFLOP/s ({llm.useful_fraction_of_measured_gemm_peak:.1%} "
            "of the GEMM peak)"
        )
    longest, bucketed, packed = by_padding["longest"], by_padding["bucketed"], by_padding["packed"]
    assert packed.summary.flops.llm.padding_waste == 0 < bucketed.summary.flops.llm.padding_waste
    assert bucketed.summary.flops.llm.padding_waste < longest.summary.flops.llm.padding_waste
    # 1.7-2.0x (bucketed) and 2.7x (packed) the throughput of longest on the AVX2 EPYC, 2026-11-29.
    throughput = {name: result.summary.throughput.requests_per_s for name, result in by_padding.items()}
    assert throughput["packed"] > 1.3 * throughput["longest"] and throughput["bucketed"] > 1.2 * throughput["longest"]


@pytest.mark.parametrize("prepack", [False, True])
def test_qwen_scoring_reaches_a_share_of_the_gemm_peak(tmp_path, prepack: bool):
    """Issue 13's figure: useful FLOP/s of qwen2.5-0.5b verbalizer scoring against this machine's GEMM peak (the
    faster of torch.matmul and oneDNN, measured in the same run), without and with the prepack lever."""
    scenario = yaml.safe_load((REPO / "scenarios" / "cpu-qwen2.5-0.5b.yaml").read_text())
    scenario["workload"]["history_length"] = 50  # fills prompts past 512 tokens
    scenario["name"] = "qwen-mfu"
    scenario["optimize"] = {"prepack": prepack}
    path = tmp_path / "qwen-mfu.yaml"
    path.write_text(yaml.safe_dump(scenario))
    _, result = run_recbench(path, tmp_path / "results")
    llm = result.summary.flops.llm
    assert llm.achieved_flops_per_s is not None and llm.fraction_of_measured_gemm_peak is not None
    print(
        f"\nqwen2.5-0.5b fp32 ({scenario['optimize']}, {result.scenario.engine} engine), prompts "
        f"{result.work.prompt_tokens_mean:.0f} tokens (mean): "
        f"{llm.achieved_flops_per_s / 1e9:.0f} GFLOP/s achieved vs GEMM peak "
        f"{llm.measured_gemm_peak_flops_per_s / 1e9:.0f} GFLOP/s = {llm.fraction_of_measured_gemm_peak:.0%}"
    )
    assert result.work.prompt_tokens_mean >= 512
    # Against the two-library peak, on the AVX2 EPYC (2026-11-29), single runs read 59-79% plain (MKL) and 74-79%
    # prepacked: a run's peak is measured once, in its own moment of the VM. The drift-resistant bar is the
    # alternating benchmark below.
    assert llm.fraction_of_measured_gemm_peak >= (0.65 if prepack else 0.55)


def test_likelihood_prompt_sharing_saves_5x_flops(tmp_path):
    _, result = run_recbench(REPO / "scenarios" / "cpu-qwen2.5-0.5b-likelihood.yaml", tmp_path)
    sharing = result.summary.flops.likelihood_prompt_sharing
    assert sharing is not None
    counted = result.summary.flops.stages[Stage.SCORING].counted_flops
    print(
        f"\nlikelihood, {sharing.candidates_per_request} candidates: shared prompt {counted / 1e9:.0f} GFLOP "
        f"counted ({sharing.shared_prompt_flops_estimate / 1e9:.0f} analytic) vs recompute "
        f"{sharing.recompute_prompt_flops_estimate / 1e9:.0f} GFLOP analytic: {sharing.saving_factor:.1f}x"
    )
    assert sharing.saving_factor >= 5


# Operators that do the FLOPs a utilisation figure counts: matmuls (the layers and the LM head) and attention.
GEMM_AND_ATTENTION_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::_scaled_dot_product")


@pytest.mark.parametrize("engine", ["transformers", "native"])
def test_a_qwen_forward_spends_85_percent_of_its_time_in_gemm_and_attention(engine: str):
    """Drift-free view of scoring efficiency (issue 13): the share of one forward's operator time that is GEMM or
    attention (torch.profiler), and the layers' GEMM rate against a square GEMM timed right beside it; a VM whose
    speed drifts 1.5x between runs moves a fraction of a cached best-ever peak, not these."""
    from torch.profiler import ProfilerActivity, profile

    arch = get_preset("qwen2.5-0.5b")
    model = build_random_model(arch, dtype=torch.float32, device=CPU, seed=0, engine=engine).model  # type: ignore[arg-type]
    ids = torch.randint(0, 100_000, (1, 512))
    mask = torch.ones_like(ids)

    def forward() -> None:
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1, use_cache=False)

    layer_flops = 2 * 512 * sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "layers." in n)
    shares, ratios = [], []
    with torch.inference_mode():
        forward()
        # Three rounds, each a profiled forward and then a square GEMM: one round's pair can fall on either side of
        # a change in the VM's speed (a square GEMM at 138 GFLOP/s beside layers at 96, 2026-11-29).
        for _ in range(3):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                forward()
            matmul_peak = _square_matmul_flops_per_s(2048)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events)
            in_gemm = sum(e.self_cpu_time_total for e in events if e.key.startswith(GEMM_AND_ATTENTION_OPS))
            gemm_s = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm")) / 1e6
            shares.append(in_gemm / total)
            ratios.append(layer_flops / gemm_s / matmul_peak)
            rest = sorted((e for e in events if not e.key.startswith(GEMM_AND_ATTENTION_OPS)),
                          key=lambda e: -e.self_cpu_time_total)[:5]  # fmt: skip
            print(
                f"\nqwen2.5-0.5b fp32 ({engine} engine), 1 x 512 tokens: {in_gemm / total:.1%} of operator time in "
                f"GEMM and attention; layer GEMMs at {layer_flops / gemm_s / 1e9:.0f} GFLOP/s vs a 2048-square "
                f"torch.matmul timed after them at {matmul_peak / 1e9:.0f} GFLOP/s ({ratios[-1]:.0%}); the rest: "
                + ", ".join(f"{e.key} {e.self_cpu_time_total / total:.1%}" for e in rest)
            )
    assert statistics.median(shares) >= 0.85
    # The library behind aten::mm (MKL) is not slow at these shapes against its own square GEMM; against oneDNN,
    # the other library in the GEMM peak, it is on AMD: see test_qwen_forward_utilisation_with_and_without_prepack.
    assert statistics.median(ratios) >= 0.75


def _square_matmul_flops_per_s(n: int, repeats: int = 4) -> float:
    """torch.matmul alone (the library aten::mm calls): best of `repeats` n-square GEMMs after one warm-up."""
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    seconds = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        torch.matmul(a, b, out=out)
        seconds.append(time.perf_counter() - started)
    return 2.0 * n**3 / min(seconds[1:])


def test_qwen_forward_utilisation_with_and_without_prepack():
    """Issue 13's utilisation, drift-resistant: qwen2.5-0.5b forwards of 512 tokens on the native engine, plain and
    with the prepack lever, alternating in one process, each round beside a fresh GEMM peak (2048-square, the
    faster of torch.matmul and oneDNN). Utilisation is on useful FLOPs (analytic, attention over the full
    rectangle, as FlopCounterMode counts it); medians over the rounds."""
    from bench.hardware.allocator import keep_freed_memory
    from bench.hardware.gemm_peak import measure_gemm_peak
    from bench.models.analytic import ForwardShape, total_forward_flops
    from bench.models.levers import prepack_linear_layers

    keep_freed_memory()  # as runs do: batches reuse freed memory instead of faulting it back in
    arch = get_preset("qwen2.5-0.5b")
    plain = build_random_model(arch, dtype=torch.float32, device=CPU, seed=0, engine="native").model  # type: ignore[arg-type]
    packed = build_random_model(arch, dtype=torch.float32, device=CPU, seed=0, engine="native").model  # type: ignore[arg-type]
    prepack_linear_layers(packed)
    tokens = 512
    flops = total_forward_flops(arch, [ForwardShape(batch=1, new_tokens=tokens, context=tokens, logits=1)])
    ids = torch.randint(0, 100_000, (1, tokens), generator=torch.Generator().manual_seed(0))

    def seconds(model: torch.nn.Module) -> float:
        started = time.perf_counter()
        model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=1, use_cache=False)
        return time.perf_counter() - started

    shares: dict[str, list[float]] = {"plain": [], "prepack": []}
    times: dict[str, list[float]] = {"plain": [], "prepack": []}
    with torch.inference_mode():
        seconds(plain), seconds(packed)  # first calls: thread pool, oneDNN primitives
        for round_ in range(6):
            order = [("plain", plain), ("prepack", packed)][:: 1 if round_ % 2 == 0 else -1]
            peak = measure_gemm_peak(CPU, torch.float32, max_n=2048, budget_s=2.0)
            for name, model in order:
                times[name].append(seconds(model))
                shares[name].append(flops / times[name][-1] / peak.flops_per_s)
    median = {name: statistics.median(values) for name, values in shares.items()}
    print(
        f"\nqwen2.5-0.5b fp32, native engine, 1 x {tokens} tokens, {flops / 1e9:.0f} GFLOP useful; 6 alternating "
        "rounds, each beside a 2048-square GEMM peak (the faster of torch.matmul and oneDNN):\n"
        + "\n".join(
            f"  {name}: forward median {statistics.median(times[name]):.2f} s, {median[name]:.1%} of the peak "
            f"(rounds {min(shares[name]):.1%}-{max(shares[name]):.1%})"
            for name in shares
        )
    )
    assert median["prepack"] >= 0.80  # 88.7-90.1% in three runs on the AVX2 EPYC (2026-11-29); goal 85%
