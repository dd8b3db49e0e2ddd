"""The batching lever: which users form each batch, what padding costs, and what bucketing saves."""

from __future__ import annotations

import pytest

from bench.loop.batching import BatchPlanner
from bench.results.reader import read_results
from bench.scenarios.loader import ScenarioPoint, expand_points
from tests.conftest import tiny_scenario_dict
from tests.test_runner import run_cli

LENGTHS = [50, 10, 40, 20, 30, 60, 5, 45]  # prompt length of users 0..7


def planner(padding: str, window: int = 2) -> BatchPlanner:
    return BatchPlanner(n_users=8, batch_size=2, padding=padding, window=window,
                        prompt_length=LENGTHS.__getitem__)  # fmt: skip


def test_longest_keeps_arrival_order_and_cycles():
    plan = planner("longest")
    assert [plan.next_batch() for _ in range(5)] == [[0, 1], [2, 3], [4, 5], [6, 7], [0, 1]]


def test_bucketed_sorts_each_window_by_length_and_scores_the_same_users():
    plan = planner("bucketed", window=2)
    batches = [plan.next_batch() for _ in range(4)]
    assert batches == [[1, 3], [2, 0], [6, 4], [7, 5]]  # window 0..3 sorted by length, then window 4..7
    assert sorted(u for b in batches for u in b) == list(range(8))
    padded = sum(max(LENGTHS[u] for u in b) * 2 for b in batches)
    arrival = sum(max(LENGTHS[u] for u in b) * 2 for b in ([0, 1], [2, 3], [4, 5], [6, 7]))
    assert padded < arrival


def test_the_default_batching_keeps_existing_spec_hashes(tmp_path):
    def hash_of(**overrides: object) -> str:
        [point] = expand_points(_write(tmp_path, tiny_scenario_dict(**overrides)))
        assert isinstance(point, ScenarioPoint)
        return point.spec_hash

    plain = hash_of()
    assert hash_of(batching={"padding": "longest", "window": 4}) == plain  # the default, spelled out
    assert hash_of(batching={"padding": "bucketed"}) != plain


def _write(tmp_path, data: dict):
    import yaml

    path = tmp_path / f"s{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_results_carry_useful_work_and_bucketing_and_packing_cut_padding(tmp_path, write_scenario):
    spec = tiny_scenario_dict(
        name="mixed", batch_size=4, max_prompt_tokens=768, engine="native",
        workload={"num_users": 32, "num_items": 400, "history_length": 30},  # long-tailed histories: mixed lengths
        repetitions={"warmup": 0, "min_iterations": 4, "max_iterations": 4},
        batching={"window": 2},
        sweep={"batching.padding": ["longest", "bucketed", "packed"]},
    )  # fmt: skip
    assert run_cli(str(write_scenario(spec)), "--results-dir", str(tmp_path / "r")) == 0
    by_padding = {s.result.scenario.batching.padding: s.result for s in read_results([tmp_path / "r"])}
    longest, bucketed, packed = by_padding["longest"], by_padding["bucketed"], by_padding["packed"]
    for result in (longest, bucketed, packed):
        llm = result.summary.flops.llm
        assert 0 < llm.useful_flops_per_batch_mean <= llm.flops_per_batch_mean
        assert llm.padding_waste == pytest.approx(1 - llm.useful_flops_per_batch_mean / llm.flops_per_batch_mean)
        assert llm.useful_achieved_flops_per_s <= llm.achieved_flops_per_s
    assert longest.work.requests == bucketed.work.requests == 16  # the same users, once each
    # Candidates (so candidate titles) depend on feedback from earlier batches, whose order differs: lengths agree
    # closely, not exactly.
    assert longest.work.prompt_tokens_mean == pytest.approx(bucketed.work.prompt_tokens_mean, rel=0.05)
    assert bucketed.work.prompt_padding_fraction < longest.work.prompt_padding_fraction
    assert bucketed.summary.flops.llm.padding_waste < longest.summary.flops.llm.padding_waste
    # Packed: the users of `longest`, in the same order, with nothing spent on padding.
    assert packed.work.requests == 16 and packed.work.prompt_tokens_mean == longest.work.prompt_tokens_mean
    assert packed.work.prompt_padding_fraction == packed.summary.flops.llm.padding_waste == 0
    assert packed.summary.flops.llm.useful_flops_per_batch_mean == packed.summary.flops.llm.flops_per_batch_mean
    # The report prices both levers against the padded point, on the tier measured and on projected ones.
    from bench.cost.api import costs_for
    from bench.cost.levers import compare_levers
    from bench.hardware.tiers import load_tiers

    comparisons = compare_levers(costs_for([tmp_path / "r"], tiers=load_tiers()).rows)
    assert {c.label: c.baseline.point for c in comparisons if c.baseline} == {
        "padding=bucketed(window 2)": "batching.padding=longest", "padding=packed": "batching.padding=longest",
    }  # fmt: skip
    for comparison in comparisons:
        assert comparison.p50_change is not None and len(comparison.costs) > 1
    # `show`'s summary says how req/s is taken for bucketed batches, and only where one is shown.
    from rich.console import Console

    from bench.console.show import summary_table

    stored = read_results([tmp_path / "r"])
    for shown, said in ((stored, True), ([s for s in stored if s.result is longest], False)):
        console = Console(record=True, width=200)
        console.print(summary_table(shown))
        assert ("req/s of bucketed batches" in console.export_text()) is said
