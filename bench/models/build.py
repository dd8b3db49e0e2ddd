"""Build the LLM under test: random weights from an architecture, or a local transformers checkpoint.

Random weights are enough for hardware cost (it depends on shapes, not values). Default initialisation
of a 0.5B model took 10-14 s on this project's 2-core machines (measured 2026-11), so the model is built on
the meta device and each parameter is then allocated once and filled with a cheap uniform draw.

Two engines run random weights: transformers' classes, or the plain-torch decoder in bench.models.native
(`engine: native`), which spares the 4-7 s of importing transformers. transformers is imported only where used.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from bench.core.errors import InputError, first_line
from bench.core.io import why_not_found
from bench.models.architecture import Architecture, read_checkpoint_architecture
from bench.models.native import NativeCausalLM, initialisation_skipped

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedTokenizerBase

Engine = Literal["transformers", "native"]
# Same spread as transformers' default initializer_range (std 0.02), drawn uniformly because
# uniform_ is ~6x faster than normal_ on this CPU; values do not change the cost being measured.
_INIT_STD = 0.02


@dataclass
class LoadedModel:
    model: torch.nn.Module  # a transformers PreTrainedModel, or a NativeCausalLM
    architecture: Architecture
    weights: Literal["random", "loaded"]


def hf_config(arch: Architecture) -> PretrainedConfig:
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}[arch.family]
    return config_class(
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_kv_heads,
        vocab_size=arch.vocab_size,
        tie_word_embeddings=arch.tie_embeddings,
        max_position_embeddings=arch.max_position_embeddings,
        # A pad id inside the vocabulary; our tokenizers put it at a low id.
        pad_token_id=0,
    )


def build_random_model(
    arch: Architecture,
    *,
    dtype: torch.dtype,
    device: torch.device,
    seed: int,
    attention: str = "sdpa",
    engine: Engine = "transformers",
) -> LoadedModel:
    """The same seed gives the same weights on either engine (parameters are filled in the same order)."""
    if engine == "native":
        with torch.device("meta"), initialisation_skipped():
            model: torch.nn.Module = NativeCausalLM(arch, attention=attention)
        _materialize_parameters(model, dtype=dtype, device=device, seed=seed)
        model.reset_rotary(device)
    else:
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config(arch), dtype=dtype, attn_implementation=attention)
        _materialize_parameters(model, dtype=dtype, device=device, seed=seed)
        _rebuild_rotary_embeddings(model, device=device)
    _prepare_for_inference(model)
    return LoadedModel(model, arch, "random")


def _materialize_parameters(model: torch.nn.Module, *, dtype: torch.dtype, device: torch.device, seed: int) -> None:
    """Replace each meta parameter by a real one; tied parameters stay one tensor.

    The CPU random generator is serial, and first-touch page faults dominate a 2 GB allocation, so the
    matrices are filled on one thread per core, each with its own generator seeded from (seed, index):
    deterministic whatever the thread timing.
    """
    replaced: dict[int, torch.nn.Parameter] = {}
    to_fill: list[torch.Tensor] = []
    for module in model.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if id(param) not in replaced:
                data = torch.empty(param.shape, dtype=dtype, device=device)
                if name == "bias":
                    data.zero_()
                elif param.dim() == 1:  # RMSNorm scales
                    data.fill_(1.0)
                else:
                    to_fill.append(data)
                replaced[id(param)] = torch.nn.Parameter(data, requires_grad=False)
            setattr(module, name, replaced[id(param)])
    with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads())) as pool:
        list(pool.map(lambda job: _fill_uniform(job[1], seed * 100_003 + job[0]), enumerate(to_fill)))


def _fill_uniform(data: torch.Tensor, seed: int) -> None:
    bound = _INIT_STD * math.sqrt(3.0)  # uniform(-b, b) has std b / sqrt(3)
    data.uniform_(-bound, bound, generator=torch.Generator(device=data.device).manual_seed(seed))


def _rebuild_rotary_embeddings(model: torch.nn.Module, *, device: torch.device) -> None:
    """Rotary inverse frequencies are computed buffers, left empty on the meta device."""
    for parent in model.modules():
        for child_name, child in list(parent.named_children()):
            if child_name == "rotary_emb":
                # Constructor signatures differ across transformers versions; config is the common part.
                setattr(parent, child_name, type(child)(model.config).to(device))


def _prepare_for_inference(model: torch.nn.Module) -> None:
    leftover = [name for name, buf in model.named_buffers() if buf.is_meta]
    if leftover:
        raise RuntimeError(f"buffers left on the meta device after build: {leftover}")
    model.eval()
    model.requires_grad_(False)


def load_checkpoint_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """A local checkpoint's own tokenizer (no hub access)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"model.path: {path}: cannot load the checkpoint's tokenizer: {first_line(exc)}") from None


def load_checkpoint(path: Path, *, dtype: torch.dtype, device: torch.device, attention: str = "sdpa") -> LoadedModel:
    """Load a local transformers checkpoint's config and weights (its tokenizer: load_checkpoint_tokenizer); no
    hub access. `attention`: transformers' attn_implementation (sdpa or eager)."""
    if not Path(path).is_dir():
        raise InputError(f"model.path: {path}: {why_not_found(Path(path), 'checkpoint folder', folder=True)}")
    from transformers import AutoModelForCausalLM

    arch = read_checkpoint_architecture(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, local_files_only=True, low_cpu_mem_usage=True, attn_implementation=attention
        ).to(device)
    except (OSError, ValueError) as exc:
        raise InputError(f"model.path: {path}: cannot load checkpoint: {first_line(exc)}") from None
    _prepare_for_inference(model)
    return LoadedModel(model, arch, "loaded")
