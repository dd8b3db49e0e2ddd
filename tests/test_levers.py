"""Optimisation levers and pretrained weights as scenario fields: validation, warnings, the model they change, and
whole runs that carry quality with intervals."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from bench.cli import main
from bench.core.kinds import WarningKind
from bench.measurement import preflight
from bench.models.levers import quantize_int8_dynamic
from bench.results.reader import load_result
from bench.scenarios.loader import expand_points
from bench.scenarios.spec import DEFAULT_EVAL_USERS, Scenario
from tests.conftest import TINY_ARCH, tiny_scenario_dict
from tests.points import point
from tests.test_runner import result_files, run_cli


def scenario(**overrides: object) -> Scenario:
    return Scenario.model_validate(tiny_scenario_dict(**overrides))


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"optimize": {"quantize": "int4"}}, "optimize.quantize", "int8_dynamic"),
        ({"optimize": {"quantize": "int8_dynamic"}, "device": "cuda"}, "optimize", "CPU only"),
        ({"optimize": {"quantize": "int8_dynamic"}, "dtype": "bfloat16"}, "optimize", "float32 activations"),
        ({"optimize": {"quantize": "int8_dynamic", "compile": True}}, "optimize", "together are not supported"),
        ({"optimize": {"attention": "flash"}}, "optimize.attention", "sdpa"),
        ({"optimize": {"prepack": True}, "device": "cuda"}, "optimize.prepack", "CPU only"),
        ({"optimize": {"prepack": True}, "dtype": "bfloat16"}, "optimize.prepack", "float32 weights"),
        ({"optimize": {"prepack": True, "quantize": "int8_dynamic"}}, "optimize.prepack", "not with optimize.quantize"),
        ({"optimize": {"prepack": True, "compile": True}}, "optimize.prepack", "not with optimize.compile"),
        ({"model": {"preset": "tiny-llama", "weights": "packaged"}}, "model", "no packaged weights"),
        ({"model": {"architecture": TINY_ARCH, "weights": "packaged"}}, "model", "preset only"),
        ({"model": {"preset": "tiny-llama", "gguf": "x.gguf"}}, "model", "exactly one"),
        ({"evaluation": {"users": 17}}, "evaluation.users (17) exceeds", "num_users"),
        ({"evaluation": {"users": 10**6}}, "evaluation.users", "less than or equal"),
    ],
)
def test_bad_levers_and_weights_are_refused_naming_the_field(overrides, field, words):
    with pytest.raises(ValidationError) as caught:
        scenario(**overrides)
    assert field in str(caught.value).replace("\n  ", ".") or field in str(caught.value)
    assert words in str(caught.value)


def test_evaluation_defaults_follow_the_weights():
    tiny = scenario()
    assert tiny.evaluation.users_for(tiny.model, 16) == 0  # random weights: chance by construction, not measured
    packaged = Scenario.model_validate({"name": "s", "model": {"preset": "smollm2-135m", "weights": "packaged"}})
    assert packaged.model.has_real_weights and packaged.model.label == "smollm2-135m (pretrained)"
    assert packaged.evaluation.users_for(packaged.model, 10_000) == DEFAULT_EVAL_USERS
    assert packaged.evaluation.users_for(packaged.model, 40) == 40  # never more users than there are


def test_new_fields_at_their_defaults_keep_existing_spec_hashes(tmp_path, write_scenario):
    def hash_of(**overrides: object) -> str:
        name = f"s{len(list(tmp_path.iterdir()))}.yaml"
        [point] = expand_points(write_scenario(tiny_scenario_dict(**overrides), name))
        return point.spec_hash

    plain = hash_of()
    spelled_out = hash_of(
        optimize={"quantize": "none", "compile": False, "attention": "sdpa"},
        evaluation={"users": None, "bootstrap_resamples": 2000},
    )
    assert spelled_out == plain
    assert hash_of(optimize={"quantize": "int8_dynamic"}) != plain
    assert hash_of(evaluation={"users": 8}) != plain
    preset_plain = hash_of(model={"preset": "tiny-llama"})
    assert hash_of(model={"preset": "tiny-llama", "weights": "random"}) == preset_plain


def test_optimize_labels_name_the_levers_pulled():
    assert scenario().optimize.label == "baseline"
    assert scenario(optimize={"quantize": "int8_dynamic"}).optimize.label == "int8_dynamic"
    assert scenario(optimize={"compile": True, "attention": "eager"}).optimize.label == "compile+attention=eager"
    prepacked = scenario(optimize={"prepack": True, "attention": "eager"}).optimize
    assert (prepacked.label, prepacked.cpu_only) == ("prepack+attention=eager", "prepack")
    assert (scenario().optimize.cpu_only, scenario(optimize={"quantize": "int8_dynamic"}).optimize.cpu_only) == (
        None,
        "int8_dynamic",
    )


def test_batching_is_a_lever_priced_against_the_padded_point():
    from bench.cost.projection import lever_key

    padded = scenario(engine="native")
    packed = scenario(engine="native", batching={"padding": "packed"}, optimize={"prepack": True})
    bucketed = scenario(engine="native", batching={"padding": "bucketed", "window": 8})
    assert [s.batching.label for s in (padded, packed, bucketed)] == [
        None,
        "padding=packed",
        "padding=bucketed(window 8)",
    ]
    assert point(optimize="prepack", batching="padding=packed").levers == "prepack+padding=packed"
    assert point(batching="padding=packed").levers == "padding=packed" and point().levers == "baseline"
    assert lever_key(padded) == lever_key(packed) == lever_key(bucketed)  # each is paired with the padded point
    assert lever_key(padded) != lever_key(scenario(engine="native", batch_size=4))


def test_a_lever_point_keeps_the_hash_it_had_before_prepack_existed(tmp_path, write_scenario):
    path = write_scenario({"name": "old", "model": {"preset": "tiny-llama"}, "optimize": {"quantize": "int8_dynamic"}})
    [point] = expand_points(path)
    assert point.spec_hash == "b219daf30b3838db"  # computed at b68cd27, before optimize.prepack: --resume finds it


def test_levers_known_to_cost_something_here_warn(monkeypatch):
    monkeypatch.setattr(preflight, "cpu_flags", lambda: {"avx2": False, "asimd": False})
    monkeypatch.setattr(preflight.shutil, "which", lambda program: None)
    found = preflight.lever_warnings(scenario(optimize={"quantize": "int8_dynamic"}))
    assert [w.kind for w in found] == [WarningKind.SLOW_LEVER] and "reference int8 kernels" in found[0].message
    compiled = [w.message for w in preflight.lever_warnings(scenario(optimize={"compile": True}))]
    assert any("no C++ compiler" in m for m in compiled) and any("first batch compiles" in m for m in compiled)
    eager = preflight.lever_warnings(scenario(optimize={"attention": "eager"}))
    assert "1.37x slower in verbalizer scoring" in eager[0].message and "faster in likelihood" in eager[0].message
    assert "not measured" not in eager[0].message
    generating = preflight.lever_warnings(scenario(optimize={"attention": "eager"}, scoring={"mode": "generate"}))
    assert "(not measured in generate scoring)" in generating[0].message
    monkeypatch.setattr(preflight, "cpu_flags", lambda: {"avx2": True, "asimd": False})
    assert preflight.lever_warnings(scenario(optimize={"quantize": "int8_dynamic"})) == []
    assert preflight.lever_warnings(scenario()) == []


def test_the_native_engine_on_a_gpu_says_it_is_unchecked_there(write_scenario, capsys):
    assert preflight.engine_warnings(scenario(engine="native")) == []
    assert preflight.engine_warnings(scenario(engine="transformers", device="cuda")) == []
    (warning,) = preflight.engine_warnings(scenario(engine="native", device="cuda"))
    assert "never on a GPU" in warning.message and warning.kind == WarningKind.OTHER
    path = write_scenario(tiny_scenario_dict(engine="native", device="cuda"))
    assert main(["validate", str(path)]) == 0  # a warning, not a refusal: validate checks files, not devices
    assert f"warning: {path}: engine: native has been checked against transformers on CPUs only" in (
        capsys.readouterr().err
    )


def test_validate_prints_lever_warnings_after_the_files_pass(write_scenario, capsys):
    path = write_scenario(tiny_scenario_dict(optimize={"attention": "eager"}))
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"ok {path}" in captured.out
    assert f"warning: {path}: optimize.attention eager" in captured.err


def test_int8_dynamic_changes_the_scores_but_not_the_shapes(tiny_model, tiny_arch):
    import copy

    ids = torch.randint(5, tiny_arch.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        before = tiny_model(input_ids=ids).logits
        quantized = quantize_int8_dynamic(copy.deepcopy(tiny_model))
        after = quantized(input_ids=ids).logits
    assert after.shape == before.shape
    assert not torch.equal(after, before)
    assert torch.allclose(after, before, atol=0.05)  # int8 rounding, not a different model
    assert any("Quantized" in type(m).__name__ or "quantized" in type(m).__module__ for m in quantized.modules())


@pytest.mark.parametrize("engine", ["native", "transformers"])
@pytest.mark.parametrize(("family", "tied"), [("llama", True), ("llama", False), ("qwen2", True)])  # qwen2: biases
def test_prepack_runs_the_same_layers_on_oneDNN(engine: str, family: str, tied: bool):
    from bench.models.architecture import Architecture
    from bench.models.build import build_random_model
    from bench.models.levers import PrepackedLinear, prepack_linear_layers

    arch = Architecture.model_validate({**TINY_ARCH, "family": family, "tie_embeddings": tied})

    def build() -> torch.nn.Module:
        return build_random_model(arch, dtype=torch.float32, device=torch.device("cpu"), seed=3, engine=engine).model  # type: ignore[arg-type]

    plain, packed = build(), build()
    replaced = prepack_linear_layers(packed)
    head = packed.lm_head  # the LM head, by its name in both engines
    assert replaced == 7 * arch.num_layers + (0 if tied else 1)  # q, k, v, o, gate, up, down; an untied LM head
    assert isinstance(head, PrepackedLinear) != tied
    assert sum(isinstance(m, PrepackedLinear) for m in packed.modules()) == replaced
    with_bias = [m for m in packed.modules() if isinstance(m, PrepackedLinear) and m.bias is not None]
    assert len(with_bias) == (3 * arch.num_layers if family == "qwen2" else 0)  # q, k and v carry biases in Qwen2
    ids = torch.randint(5, arch.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected, got = plain(input_ids=ids).logits, packed(input_ids=ids).logits
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_prepack_without_onednn_is_refused_in_one_line(monkeypatch, write_scenario, tmp_path, capsys):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    path = write_scenario(tiny_scenario_dict(name="packed", optimize={"prepack": True}))
    assert run_cli(str(path), "--results-dir", str(tmp_path / "r")) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: optimize.prepack: this torch build has no oneDNN (torch.backends.mkldnn is unavailable)"
    )


def test_a_lever_run_counts_float_flops_and_evaluates_the_same_users(tmp_path, write_scenario, monkeypatch):
    import bench.measurement.prepare

    released: list[str] = []  # the replaced float weights go back to the OS before the lever's memory is measured
    monkeypatch.setattr(bench.measurement.prepare, "release_freed_memory", lambda: released.append("set-up"))
    common = {"evaluation": {"users": 8, "bootstrap_resamples": 200}, "scoring": {"mode": "likelihood"}}
    levers = [{"quantize": "int8_dynamic", "attention": "eager"}, {"prepack": True}]
    path = write_scenario(tiny_scenario_dict(name="levers", **common, sweep={"optimize": [{}, *levers]}))
    assert run_cli(str(path), "--results-dir", str(tmp_path / "r")) == 0
    assert released == ["set-up", "set-up"]  # once per lever point, never for the baseline
    results = sorted((load_result(p) for p in result_files(tmp_path / "r")), key=lambda r: r.point.index)
    baseline, int8, prepack = results
    assert [r.scenario.optimize.label for r in results] == ["baseline", "int8_dynamic+attention=eager", "prepack"]
    assert "apply_levers" not in baseline.setup.seconds
    for lever in (int8, prepack):
        assert {"apply_levers", "levers_first_batch"} <= set(lever.setup.seconds)
        assert lever.model.params_total == baseline.model.params_total  # counted before the layers are replaced
        assert lever.flops.counted.per_batch == baseline.flops.counted.per_batch
    # The same multiply-adds to within float32 rounding: the same ranking of the same users.
    assert prepack.quality.evaluation.ndcg == pytest.approx(baseline.quality.evaluation.ndcg, abs=1e-6)
    for result in (baseline, int8, prepack):
        evaluation = result.quality.evaluation
        assert evaluation is not None and evaluation.users == 8 and len(evaluation.ndcg) == 8
        assert evaluation.ndcg_ci.low <= evaluation.ndcg_mean <= evaluation.ndcg_ci.high
        assert evaluation.chance_ndcg == pytest.approx(result.quality.chance_ndcg / result.quality.candidate_recall)
    assert int8.quality.evaluation.user_ids == baseline.quality.evaluation.user_ids  # paired by construction


def test_a_gguf_model_runs_end_to_end_with_its_own_tokenizer(tmp_path, write_scenario, monkeypatch):
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    from tests.gguf_files import write_tiny_gguf

    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path / "cache"))
    write_tiny_gguf(tmp_path / "tiny.gguf")
    data = tiny_scenario_dict(
        name="gguf", model={"gguf": str(tmp_path / "tiny.gguf")}, max_prompt_tokens=120, scoring={"mode": "likelihood"}
    )
    data["workload"] |= {"dataset": "synthetic_topics", "title_max_tokens": 8}
    assert run_cli(str(write_scenario(data)), "--results-dir", str(tmp_path / "r")) == 0
    [path] = result_files(tmp_path / "r")
    result = load_result(path)
    assert result.model.weights == "loaded" and result.model.label == "gguf:tiny.gguf"
    assert result.model.weights_source is not None and "tiny.gguf" in result.model.weights_source
    assert "load_tokenizer" in result.setup.seconds and "train_tokenizer" not in result.setup.seconds
    assert result.workload.source == "synthetic_topics"
    evaluation = result.quality.evaluation  # pretrained weights: evaluated by default (every user, here 16)
    assert evaluation is not None and evaluation.users == 16
    assert result.quality.chance_level is False
    assert any(w.kind == WarningKind.CHANCE_LEVEL for w in result.warnings) != evaluation.above_chance
