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


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_same_parameters_and_logits_as_transformers(family: str, attention: str) -> None:
    reference, ours = both_engines(small(family), attention)
    theirs_state, our_state = reference.state_dict(), ours.state_dict()
    assert theirs_state.keys() == our_state.keys()
    assert all(torch.equal(theirs_state[name], our_state[name]) for name in theirs_state)
    with torch.inference_mode():
        compare_padded_and_cached(reference, ours)


def compare_padded_and_cached(reference: torch.nn.Module, ours: torch.nn.Module) -> None:
    inputs = left_padded()
    theirs = reference(**inputs, use_cache=True)
    mine = ours(**inputs, use_cache=True)
    real = inputs["attention_mask"].bool()  # padding positions' outputs are never read
    torch.testing.assert_close(mine.logits[real], theirs.logits[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        ours(input_ids=inputs["input_ids"][:1], logits_to_keep=1).logits,
        reference(input_ids=inputs["input_ids"][:1], logits_to_keep=1).logits,
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip

    # Two decoded tokens on the prompt's cache, as generate mode runs them.
    step = {
        "input_ids": torch.tensor([[5, 6], [7, 8], [9, 10]]),
        "attention_mask": torch.cat([inputs["attention_mask"], torch.ones(3, 2, dtype=torch.long)], dim=1),
        "position_ids": inputs["position_ids"][:, -1:] + 1 + torch.arange(2),
    }
    theirs_step = reference(**step, **{cache_arg(reference): getattr(theirs, cache_arg(reference))}, use_cache=True)
    mine_step = ours(**step, past_key_values=mine.past_key_values, use_cache=True)
    torch.testing.assert_close(mine_step.logits, theirs_step.logits, rtol=1e-5, atol=1e-5)


def test_shared_prompt_cache_as_likelihood_scoring_uses_it() -> None:
    reference, ours = both_engines(small("qwen2"), "sdpa")
    inputs = left_padded(batch=2)
    outputs = []
    for model in (reference, ours):
        prefill = model(**inputs, logits_to_keep=1, use_cache=True)
        cache = getattr(prefill, cache_arg(model)) if model is reference else prefill.past_key_values
        cache.batch_repeat_interleave(3)
        continuation = torch.arange(2, 14).view(6, 2)
        mask = torch.cat([inputs["attention_mask"].repeat_interleave(3, dim=0), torch.ones(6, 2, dtype=torch.long)], 1)
        positions = inputs["position_ids"][:, -1:].repeat_interleave(3, dim=0) + 1 + torch.arange(2)
        name = cache_arg(model) if model is reference else "past_key_values"
        step = model(input_ids=continuation, attention_mask=mask, position_ids=positions, **{name: cache})
        outputs.append(step.logits)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


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


@pytest.mark.parametrize("engine", ["transformers", "native"])
def test_counted_flops_and_operators_match_torch_flop_counter(engine: str) -> None:
    model = build_random_model(small("llama"), dtype=torch.float32, device=CPU, seed=0, engine=engine).model  # type: ignore[arg-type]
    for inputs in (left_padded(), {"input_ids": left_padded()["input_ids"][:1]}):
        ours = _CountingMode()
        with ours:
            model(**inputs, logits_to_keep=1)
        mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops}
        torch_counter, reference_ops = FlopCounterMode(display=False, custom_mapping=mapping), _ReferenceOpCounter()
        with torch_counter, reference_ops:
            model(**inputs, logits_to_keep=1)
        assert ours.flops == torch_counter.get_total_flops() > 0
        assert ours.calls == reference_ops.calls > 0


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
