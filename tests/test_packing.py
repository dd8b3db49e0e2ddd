"""batching.padding: packed: a batch's prompts run end to end in one row, without padding, with attention kept
inside each request. The scores and the counted FLOPs must be those of the same requests run padded, minus the
padding."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

import bench.models.native as native
from bench.loop.prompts import PromptBuilder, left_pad, pack
from bench.loop.scoring import GenerateScorer, LikelihoodScorer, ScoreOutput, Scorer, VerbalizerScorer
from bench.models.analytic import (
    ForwardShape,
    activation_bytes_estimate,
    forward_bytes_by_part,
    forward_flops,
    kv_cache_bytes,
    memory_estimate,
    total_forward_flops,
)
from bench.models.architecture import Architecture
from bench.models.build import build_random_model
from bench.scenarios.spec import Scenario
from bench.trackers.flops import _CountingMode
from tests.conftest import tiny_scenario_dict
from tests.test_loop import recorder
from tests.test_native_engine import small

CPU = torch.device("cpu")
LENGTHS = [7, 12, 3]


@pytest.fixture(autouse=True)
def without_autograd():
    """No autograd graph, as the scorers run (not inference mode: the models are built inside the tests)."""
    with torch.no_grad():
        yield


def native_model(arch: Architecture, attention: str = "sdpa") -> torch.nn.Module:
    return build_random_model(arch, dtype=torch.float32, device=CPU, seed=3, attention=attention, engine="native").model


def prompts(vocab: int = 300) -> list[list[int]]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(2, vocab, (n,), generator=generator).tolist() for n in LENGTHS]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_a_packed_row_gives_each_request_its_padded_logits_and_cache(family: str, attention: str) -> None:
    model = native_model(small(family), attention)
    padded = left_pad(prompts(), pad_id=0, device=CPU)
    row = pack(prompts(), CPU)
    assert row.position_ids.tolist() == [[*range(7), *range(12), *range(3)]]
    reference = model(input_ids=padded.input_ids, attention_mask=padded.attention_mask,
                      position_ids=padded.position_ids, logits_to_keep=2, use_cache=True)  # fmt: skip
    packed = model(input_ids=row.input_ids, sequence_lengths=row.lengths, logits_to_keep=2, use_cache=True)
    torch.testing.assert_close(packed.logits, reference.logits, rtol=1e-5, atol=1e-5)
    # The packed cache laid out as a left-padded one: a decode step on it sees what it sees after a padded prompt.
    packed.past_key_values.unpack_to_left_padded(row.lengths)
    mask = torch.cat([padded.attention_mask, torch.ones(3, 1, dtype=torch.long)], dim=1)
    step = {"input_ids": torch.full((3, 1), 5), "attention_mask": mask, "position_ids": padded.position_ids[:, -1:] + 1}
    after_packed = model(**step, past_key_values=packed.past_key_values).logits
    after_padded = model(**step, past_key_values=reference.past_key_values).logits
    torch.testing.assert_close(after_packed, after_padded, rtol=1e-5, atol=1e-5)


def test_mistral_window_applies_within_each_packed_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(native.SLIDING_WINDOW, "mistral", 5)  # cuts into the 7- and 12-token prompts
    model = native_model(small("mistral"))
    padded = left_pad(prompts(), pad_id=0, device=CPU)
    row = pack(prompts(), CPU)
    reference = model(input_ids=padded.input_ids, attention_mask=padded.attention_mask,
                      position_ids=padded.position_ids, logits_to_keep=1).logits  # fmt: skip
    torch.testing.assert_close(model(input_ids=row.input_ids, sequence_lengths=row.lengths, logits_to_keep=1).logits,
                               reference, rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ({"sequence_lengths": [7, 12]}, "do not fill one packed row"),
        ({"sequence_lengths": [22, 0]}, "do not fill one packed row"),
        ({"sequence_lengths": LENGTHS, "logits_to_keep": 0}, "logits_to_keep: 1 to 3 per request"),
        ({"sequence_lengths": LENGTHS, "attention_mask": torch.ones(1, 22)}, "no attention_mask"),
        ({"sequence_lengths": [11, 11], "input_ids": torch.ones(2, 11, dtype=torch.long)}, "do not fill one packed"),
        ({"sequence_lengths": LENGTHS, "past_key_values": "cache"}, "no past_key_values before it"),
    ],
)
def test_a_packed_forward_refuses_what_it_cannot_run(call: dict, words: str) -> None:
    model = native_model(small("llama"))
    if call.get("past_key_values") == "cache":  # a cache that already holds a prompt
        call["past_key_values"] = model(input_ids=torch.ones(1, 4, dtype=torch.long), use_cache=True).past_key_values
    with pytest.raises(ValueError, match=words):
        model(**{"input_ids": torch.ones(1, 22, dtype=torch.long), "logits_to_keep": 1, **call})


@pytest.mark.parametrize("lever", ["int8_dynamic", "prepack"])
def test_packed_rows_run_the_linear_levers_as_padded_batches_do(lever: str) -> None:
    from bench.models.levers import prepack_linear_layers, quantize_int8_dynamic

    model = native_model(small("qwen2"))
    model = quantize_int8_dynamic(model) if lever == "int8_dynamic" else model
    if lever == "prepack":
        prepack_linear_layers(model)
    padded = left_pad(prompts(), pad_id=0, device=CPU)
    row = pack(prompts(), CPU)
    reference = model(input_ids=padded.input_ids, attention_mask=padded.attention_mask,
                      position_ids=padded.position_ids, logits_to_keep=1).logits  # fmt: skip
    packed = model(input_ids=row.input_ids, sequence_lengths=row.lengths, logits_to_keep=1).logits
    # int8: activations are quantized per batch, and a padded batch's padding rows move the scale a little.
    tolerance = 2e-2 if lever == "int8_dynamic" else 1e-5
    torch.testing.assert_close(packed, reference, rtol=tolerance, atol=tolerance)


@pytest.fixture
def native_prompt_builder(tiny_tokenizer, tiny_interactions):
    from bench.data.tokenizer import encode_texts

    titles = encode_texts(tiny_tokenizer, tiny_interactions.catalogue.titles)
    return PromptBuilder(tiny_tokenizer, titles, max_prompt_tokens=400, title_max_tokens=64, history_length=30)


@pytest.mark.parametrize("scorer_class", [VerbalizerScorer, LikelihoodScorer, GenerateScorer])
def test_packed_scoring_gives_the_padded_scores_without_the_padding(
    scorer_class: type[Scorer], tiny_arch, native_prompt_builder
) -> None:
    model = build_random_model(tiny_arch, dtype=torch.float32, device=CPU, seed=0, engine="native").model
    histories = [[1], list(range(10, 22)), [30, 31, 32]]  # prompts of three lengths
    candidates = torch.arange(18).view(3, 6)
    extra = {"new_tokens": 3} if scorer_class is GenerateScorer else {}

    def score(packed: bool) -> tuple[ScoreOutput, list[str]]:
        scorer = scorer_class(model, native_prompt_builder, pad_id=0, device=CPU, packed=packed, **extra)
        seen, stage = recorder()
        return scorer.score(histories, candidates, stage), seen

    (padded, padded_stages), (packed, packed_stages) = score(False), score(True)
    torch.testing.assert_close(packed.scores, padded.scores, rtol=1e-4, atol=1e-4)
    assert packed_stages == padded_stages
    assert packed.prompt_tokens == padded.prompt_tokens and len(set(padded.prompt_tokens)) == 3
    prefill = packed.forwards[0]
    assert (prefill.batch, prefill.segments) == (1, tuple(padded.prompt_tokens))
    assert packed.forwards[1:] == padded.forwards[1:]  # the steps after the prompt run padded either way
    # The prompt's work is the useful work of its requests: padding gone.
    arch = model.architecture
    prompt_useful = total_forward_flops(arch, packed.useful_forwards[: len(histories)])
    assert total_forward_flops(arch, [prefill]) == prompt_useful < total_forward_flops(arch, padded.forwards[:1])


def test_a_packed_forward_counts_each_request_once_and_streams_the_weights_once() -> None:
    arch = small("qwen2")
    packed = ForwardShape(batch=1, new_tokens=22, context=22, logits=1, keeps_cache=False, segments=tuple(LENGTHS))
    each = [ForwardShape(batch=1, new_tokens=n, context=n, logits=1, keeps_cache=False) for n in LENGTHS]
    assert forward_flops(arch, packed) == {
        part: sum(forward_flops(arch, shape)[part] for shape in each) for part in ("linear", "attention", "lm_head")
    }
    moved, apart = (
        forward_bytes_by_part(arch, packed, dtype="float32"),
        forward_bytes_by_part(arch, each[0], dtype="float32"),
    )
    assert moved["lm_head"] - 3 * 300 * 4 == apart["lm_head"] - 300 * 4  # the LM head's table read once, not 3 times


def test_counted_flops_of_a_packed_forward_equal_the_formula() -> None:
    arch = small("llama")
    model = native_model(arch)
    row = pack(prompts(), CPU)
    counter = _CountingMode()
    with counter:
        model(input_ids=row.input_ids, sequence_lengths=row.lengths, logits_to_keep=1)
    shape = ForwardShape(batch=1, new_tokens=22, context=22, logits=1, keeps_cache=False, segments=tuple(LENGTHS))
    assert counter.flops == total_forward_flops(arch, [shape])


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({}, "runs on engine: native"),
        ({"engine": "native", "optimize": {"compile": True}}, "is not compiled (optimize.compile"),
    ],
)
def test_packing_is_refused_where_it_cannot_run_naming_the_field(overrides: dict, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate(tiny_scenario_dict(batching={"padding": "packed"}, **overrides))
    assert "batching.padding: packed" in str(caught.value) and words in str(caught.value)


def test_prompt_sharing_recomputes_packed_prompts_as_packed() -> None:
    """Likelihood mode's saving factor compares like with like: a packed prefill against recomputing every packed
    prompt + title, a padded one against padded rows."""
    from bench.measurement.derive import prompt_sharing

    arch, k, title = small("llama"), 2, 4
    padded_prefill = ForwardShape(batch=3, new_tokens=12, context=12, logits=1)
    packed_prefill = ForwardShape(batch=1, new_tokens=22, context=22, logits=1, segments=tuple(LENGTHS))
    candidates = ForwardShape(batch=3 * k, new_tokens=title, context=12 + title, logits=title)
    packed = prompt_sharing(arch, _calibration([packed_prefill, candidates]))
    padded = prompt_sharing(arch, _calibration([padded_prefill, candidates]))
    assert packed.candidates_per_request == padded.candidates_per_request == k
    each = [
        ForwardShape(batch=1, new_tokens=n + title, context=n + title, logits=title + 1)
        for n in LENGTHS
        for _ in range(k)
    ]
    assert packed.recompute_prompt_flops_estimate == total_forward_flops(arch, each)
    rows = [ForwardShape(batch=3 * k, new_tokens=12 + title, context=12 + title, logits=title + 1)]
    assert padded.recompute_prompt_flops_estimate == total_forward_flops(arch, rows)


def _calibration(forwards: list[ForwardShape]):
    from bench.loop.pipeline import BatchRecord

    return BatchRecord(users=3, hits=0, ndcg_sum=0.0, held_out_in_candidates=0, prompt_tokens=LENGTHS,
                       forwards=forwards, useful_forwards=[], generated_tokens=0, interest_shape=(3, 1, 1),
                       retrieval_shape=(3, 1, 1))  # fmt: skip


def test_a_packed_forward_holds_the_logits_of_each_request() -> None:
    arch = small("llama")
    packed = ForwardShape(batch=1, new_tokens=22, context=22, logits=1, keeps_cache=True, segments=tuple(LENGTHS))
    without_logits = ForwardShape(batch=1, new_tokens=22, context=22, logits=0)
    assert activation_bytes_estimate(arch, packed, dtype="float32") == (
        activation_bytes_estimate(arch, without_logits, dtype="float32") + 3 * arch.vocab_size * 4
    )
    assert memory_estimate(arch, [packed], dtype="float32")["kv_cache_bytes"] == kv_cache_bytes(
        arch, tokens=22, dtype="float32"
    )


def test_packed_likelihood_and_generate_runs_count_what_they_ran(tmp_path, write_scenario) -> None:
    """Through the runner: counted FLOPs equal the formula, prompts carry no padding, and likelihood's padded
    titles still show as waste."""
    from bench.results.reader import read_results
    from tests.test_runner import run_cli

    spec = tiny_scenario_dict(
        name="packed-modes", batch_size=3, engine="native", batching={"padding": "packed"},
        scoring={"new_tokens": 3}, max_prompt_tokens=512, workload={"history_length": 30},
        repetitions={"warmup": 0, "min_iterations": 2, "max_iterations": 2},
        sweep={"scoring.mode": ["likelihood", "generate"]},
    )  # fmt: skip
    assert run_cli(str(write_scenario(spec)), "--results-dir", str(tmp_path / "r")) == 0
    by_mode = {s.result.scenario.scoring.mode: s.result for s in read_results([tmp_path / "r"])}
    assert set(by_mode) == {"likelihood", "generate"}
    for result in by_mode.values():
        scoring = result.summary.flops.stages["scoring"]
        assert scoring.counted_flops == scoring.analytic_flops_estimate > 0
        assert result.work.prompt_padding_fraction == 0
        assert result.flops.calibration_batch.forwards[0].segments
    assert by_mode["likelihood"].summary.flops.llm.padding_waste > 0  # titles padded to the longest
    # `show` says where that padding is, since the prompts have none.
    from rich.console import Console

    from bench.console.show import render_result

    for mode, where in (("likelihood", "the candidate titles"), ("generate", "the decode steps")):
        console = Console(record=True, width=400)
        render_result(next(s for s in read_results([tmp_path / "r"]) if s.result.scenario.scoring.mode == mode),
                      console)  # fmt: skip
        assert f"(prompts: 0.0% of their positions; {where} still run as a padded batch)" in console.export_text()
    sharing = by_mode["likelihood"].summary.flops.likelihood_prompt_sharing
    assert sharing.candidates_per_request == 6 and sharing.saving_factor > 1
