"""Presets, random-weight construction and local checkpoint loading."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from bench.core.errors import InputError
from bench.models.analytic import total_params
from bench.models.build import build_random_model, hf_config, load_checkpoint, load_checkpoint_tokenizer
from bench.models.presets import get_preset, preset_metadata, preset_names

CPU = torch.device("cpu")


@pytest.mark.parametrize("name", [n for n in preset_names() if "params" in preset_metadata(n)])
def test_preset_shapes_give_the_published_parameter_count(name: str):
    arch = get_preset(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config(arch))
    published = preset_metadata(name)["params"]
    assert sum(p.numel() for p in model.parameters()) == published
    assert total_params(arch) == published


def test_random_build_materialises_every_tensor_and_keeps_ties(tiny_arch):
    loaded = build_random_model(tiny_arch, dtype=torch.float32, device=CPU, seed=0)
    model = loaded.model
    assert loaded.weights == "random"
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert model.lm_head.weight is model.model.embed_tokens.weight
    weight = model.model.layers[0].mlp.up_proj.weight
    assert float(weight.std()) == pytest.approx(0.02, rel=0.1)
    assert torch.equal(model.model.norm.weight, torch.ones_like(model.model.norm.weight))
    # Rotary frequencies are recomputed, not left as uninitialised memory.
    reference = AutoModelForCausalLM.from_config(hf_config(tiny_arch))
    assert torch.allclose(model.model.rotary_emb.inv_freq, reference.model.rotary_emb.inv_freq)


def test_random_build_is_deterministic_by_seed(tiny_arch):
    def first_weight(seed: int) -> torch.Tensor:
        model = build_random_model(tiny_arch, dtype=torch.float32, device=CPU, seed=seed).model
        return model.model.layers[0].self_attn.q_proj.weight

    assert torch.equal(first_weight(3), first_weight(3))
    assert not torch.equal(first_weight(3), first_weight(4))


def test_checkpoint_round_trip(tmp_path, tiny_arch, tiny_tokenizer):
    original = build_random_model(tiny_arch, dtype=torch.float32, device=CPU, seed=1).model
    original.save_pretrained(tmp_path / "ckpt")
    tiny_tokenizer.save_pretrained(tmp_path / "ckpt")
    loaded = load_checkpoint(tmp_path / "ckpt", dtype=torch.float32, device=CPU)
    assert loaded.weights == "loaded"
    tokenizer = load_checkpoint_tokenizer(tmp_path / "ckpt")
    assert tokenizer.encode("Candidate items:\n") == tiny_tokenizer.encode("Candidate items:\n")
    assert loaded.architecture == tiny_arch
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        assert torch.allclose(original(input_ids=ids).logits, loaded.model(input_ids=ids).logits, atol=1e-6)


def test_missing_checkpoint_names_the_field(tmp_path):
    with pytest.raises(InputError, match=r"model\.path: .*no such checkpoint"):
        load_checkpoint(tmp_path / "absent", dtype=torch.float32, device=CPU)


def test_unloadable_checkpoint_is_one_line(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=r"config\.json: not a readable JSON config") as info:
        load_checkpoint(tmp_path / "broken", dtype=torch.float32, device=CPU)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"num_attention_heads": 0}, "num_attention_heads"),
        ({"hidden_size": -5}, "hidden_size"),
        ({"num_hidden_layers": "many"}, "num_hidden_layers"),
        ({"model_type": "gpt2"}, "model_type"),
        ({"vocab_size": 10**12}, "vocab_size"),
    ],
)
def test_a_checkpoint_config_with_bad_values_is_one_line_naming_the_field(tmp_path, tiny_arch, bad, field):
    from bench.models.build import hf_config

    folder = tmp_path / "ckpt"
    folder.mkdir()
    config = {**hf_config(tiny_arch).to_dict(), **bad}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError) as info:
        load_checkpoint(folder, dtype=torch.float32, device=CPU)
    message = str(info.value)
    assert "\n" not in message and "config.json" in message and field in message
