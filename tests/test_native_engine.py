"""`engine: native` runs the same computation as transformers' classes: same parameters from the same seed, the same
logits (padded, unpadded, with a KV cache, with a shared prompt cache), the same counted FLOPs."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM, MistralConfig

import bench.models.native as native
from bench.models.architecture import Architecture
from bench.models.build import build_random_model
from bench.models.levers import quantize_int8_dynamic
from bench.scenarios.spec import Scenario
from bench.trackers.flops import _CountingMode, _cpu_flash_attention_flops

CPU = torch.device("cpu")


def small(family: str) -> Architecture:
    return Architecture(
        family=family, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=4, num_kv_heads=2,
        vocab_size=300, tie_embeddings=family == "llama",
    )  # fmt: skip


def both_engines(arch: Architecture, attention: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    return tuple(  # type: ignore[return-value]
        build_random_model(arch, dtype=torch.float32, device=CPU, seed=3, attention=attention, engine=engine).model
        for engine in ("transformers", "native")
    )


def left_padded(batch: int = 3, width: int = 12, vocab: int = 300) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2, vocab, (batch, width), generator=generator)
    mask = torch.ones_like(ids)
    for row in range(batch):
        mask[row, : 2 * row] = 0  # row 0 unpadded, the others padded on the left
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp_min(0)}


def cache_arg(model: torch.nn.Module) -> str:
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def run_like_the_scorers(model: torch.nn.Module, padded: bool) -> list[torch.Tensor]:
    """The forwards the scorers run, in order: a (left-padded) prefill, two single-token decode steps on its cache,
    then the prompt's cache shared by 2 right-padded continuations per request (likelihood). Every position's
    logits, padding included: with int8 dynamic quantization a padding row's values reach the real rows."""
    inputs = left_padded() if padded else {"input_ids": left_padded()["input_ids"]}
    mask = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"]))
    positions = inputs.get("position_ids", torch.arange(inputs["input_ids"].shape[1]).expand(3, -1))
    name = cache_arg(model)
    prefill = model(**inputs, use_cache=True)
    logits, cache = [prefill.logits], getattr(prefill, name)
    for token in (5, 6):
        mask = torch.cat([mask, torch.ones(3, 1, dtype=torch.long)], dim=1)
        positions = positions[:, -1:] + 1
        step = model(input_ids=torch.full((3, 1), token), attention_mask=mask, position_ids=positions, **{name: cache})
        logits.append(step.logits)
        cache = getattr(step, name)
    cache.batch_repeat_interleave(2)
    continuation_mask = torch.tensor([[1, 1, 1], [1, 0, 0]]).repeat(3, 1)  # the second title is one token long
    full_mask = torch.cat([mask.repeat_interleave(2, dim=0), continuation_mask], dim=1)
    start = positions.repeat_interleave(2, dim=0) + 1
    titles = torch.arange(2, 20).view(6, 3) * continuation_mask
    shared = model(input_ids=titles, attention_mask=full_mask, position_ids=start + torch.arange(3), **{name: cache})
    return [*logits, shared.logits]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_same_parameters_and_logits_as_transformers(family: str, attention: str) -> None:
    reference, ours = both_engines(small(family), attention)
    theirs_state, our_state = reference.state_dict(), ours.state_dict()
    assert theirs_state.keys() == our_state.keys()
    assert all(torch.equal(theirs_state[name], our_state[name]) for name in theirs_state)
    with torch.inference_mode():
        for padded in (True, False):
            mine, theirs = run_like_the_scorers(ours, padded), run_like_the_scorers(reference, padded)
            for our_logits, their_logits in zip(mine, theirs, strict=True):
                torch.testing.assert_close(our_logits, their_logits, rtol=1e-5, atol=1e-5)
        one = {"input_ids": left_padded()["input_ids"][:1], "logits_to_keep": 1}
        torch.testing.assert_close(ours(**one).logits, reference(**one).logits, rtol=1e-5, atol=1e-5)


def test_int8_dynamic_quantization_gives_the_same_logits_on_both_engines() -> None:
    """Activations are quantized with one scale per tensor, padding rows included: so padding rows must come out
    of attention as transformers' do, or the real rows' scores move."""
    reference, ours = both_engines(small("qwen2"), "sdpa")
    reference, ours = (quantize_int8_dynamic(model) for model in (reference, ours))
    with torch.inference_mode():
        mine, theirs = run_like_the_scorers(ours, True), run_like_the_scorers(reference, True)
        for our_logits, their_logits in zip(mine, theirs, strict=True):
            torch.testing.assert_close(our_logits, their_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_cpu_mask_and_grouped_heads_give_identical_outputs(family: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU the mask goes to SDPA in its additive form, made once per forward (NativeCausalLM._kernel_mask),
    with grouped key heads not copied (native._grouped_heads_take_a_mask): every position's logits, padding rows
    included, equal those of SDPA given the boolean mask and repeated heads, as transformers gives them, through
    a padded prefill, decode steps and a shared prompt cache."""
    if family == "mistral":
        monkeypatch.setitem(native.SLIDING_WINDOW, "mistral", 8)  # the window cuts into the 12+ tokens
    model = build_random_model(small(family), dtype=torch.float32, device=CPU, seed=3, engine="native").model
    masks: list[tuple[torch.dtype, bool]] = []  # per masked SDPA call: the mask's dtype, whether heads are grouped
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(query: torch.Tensor, keys: torch.Tensor, *args: object, attn_mask: torch.Tensor | None = None,
                  **kwargs: object) -> torch.Tensor:  # fmt: skip
        if attn_mask is not None:
            masks.append((attn_mask.dtype, keys.shape[1] < query.shape[1]))
        return sdpa(query, keys, *args, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(native.F, "scaled_dot_product_attention", recording)
    with torch.inference_mode():
        additive = run_like_the_scorers(model, True)
        assert masks and all(dtype == torch.float32 for dtype, _ in masks)
        grouped = [grouped for (_, grouped) in masks]
        assert grouped.count(True) >= 2 * len(model.model.layers)  # the prefill's and the shared cache's layers
        monkeypatch.setattr(native.NativeCausalLM, "_kernel_mask", lambda self, allowed: allowed)
        monkeypatch.setattr(native, "_grouped_heads_take_a_mask", lambda device: False)
        masks.clear()
        boolean = run_like_the_scorers(model, True)
        assert masks and all(dtype == torch.bool for dtype, _ in masks)
    for ours, sdpa_converted in zip(additive, boolean, strict=True):
        assert torch.equal(ours, sdpa_converted)


def test_mistral_sliding_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond its window a Mistral query no longer sees the oldest keys; a window of 8 shows it on 20 tokens."""
    monkeypatch.setitem(native.SLIDING_WINDOW, "mistral", 8)
    arch = small("mistral")
    ours = build_random_model(arch, dtype=torch.float32, device=CPU, seed=1, engine="native").model
    config = MistralConfig(
        hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=300, sliding_window=8, pad_token_id=0,
    )  # fmt: skip
    reference = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    reference.load_state_dict(ours.state_dict())
    reference.requires_grad_(False)
    ids = torch.randint(2, 300, (2, 20), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(ours(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=1e-5, atol=1e-5)
    windowless = NativeWithoutWindow(arch, ours)
    assert not torch.allclose(windowless(input_ids=ids).logits[:, -1], ours(input_ids=ids).logits[:, -1])


def NativeWithoutWindow(arch: Architecture, trained: torch.nn.Module) -> torch.nn.Module:
    plain = native.NativeCausalLM(arch)
    plain.load_state_dict(trained.state_dict())
    plain.window = None
    return plain.eval()


class _ReferenceOpCounter(TorchDispatchMode):
    """Operator calls as a separate mode beside FlopCounterMode counts them (views excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls += 0 if func.is_view else 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("engine", ["transformers", "native"])
def test_counted_flops_and_operators_match_torch_flop_counter(engine: str, attention: str) -> None:
    arch = small("llama")
    model = build_random_model(arch, dtype=torch.float32, device=CPU, seed=0, engine=engine, attention=attention).model  # type: ignore[arg-type]
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}
    with torch.inference_mode():
        for padded in (True, False):
            ours = _CountingMode()
            with ours:
                run_like_the_scorers(model, padded)
            torch_counter, reference_ops = FlopCounterMode(display=False, custom_mapping=mapping), _ReferenceOpCounter()
            with torch_counter, reference_ops:
                run_like_the_scorers(model, padded)
            assert ours.flops == torch_counter.get_total_flops() > 0
            assert ours.calls == reference_ops.calls > 0


@pytest.mark.parametrize(
    ("a", "b"),
    [((5, 7), (7, 3)), ((2, 5, 7), (7, 3)), ((5, 7), (4, 7, 3)), ((1, 3, 5, 7), (2, 3, 7, 4)), ((7,), (7, 3))],
)
def test_matmul_is_counted_as_its_decomposition_is(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    left, right = torch.randn(a), torch.randn(b)
    ours = _CountingMode()
    with ours:
        torch.matmul(left, right)
    reference = FlopCounterMode(display=False)
    with reference:
        torch.matmul(left, right)
    assert ours.flops == reference.get_total_flops()


def test_both_engines_count_the_same_flops() -> None:
    counts = []
    for model in both_engines(small("llama"), "sdpa"):
        counter = _CountingMode()
        with torch.inference_mode(), counter:
            run_like_the_scorers(model, padded=True)
        counts.append(counter.flops)
    assert counts[0] == counts[1]


def test_counting_mode_keeps_dynamo_out_of_start_up() -> None:
    """torch wraps a dispatch mode's handler in a Dynamo guard that imports torch._dynamo (seconds) on first use,
    unless the mode opts out; ours does (bench.trackers.flops)."""
    handler = _CountingMode.__dict__["__torch_dispatch__"]
    assert not hasattr(handler, "__wrapped__") and handler.__qualname__ == "_CountingMode.__torch_dispatch__"


def test_native_engine_refuses_pretrained_weights() -> None:
    with pytest.raises(ValueError, match="engine: native runs random weights"):
        Scenario.model_validate(
            {"name": "x", "model": {"preset": "smollm2-135m", "weights": "packaged"}, "engine": "native"}
        )


@pytest.mark.slow  # imports torch._dynamo (seconds)
def test_compile_traces_the_native_forward_as_one_graph() -> None:
    """optimize.compile must compile the same single graph transformers' forward gives, not a forward split at a
    data-dependent branch (the padding check is skipped while compiling)."""
    import torch._dynamo

    model = build_random_model(small("llama"), dtype=torch.float32, device=CPU, seed=0, engine="native").model
    explained = torch._dynamo.explain(model.forward)(**left_padded(), logits_to_keep=1)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
