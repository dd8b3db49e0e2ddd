"""Optimisation levers applied to a built model (scenario `optimize`): int8 dynamic quantization and torch.compile.
The attention implementation is chosen when the model is built (bench.models.build).

FLOPs are counted before a lever is applied: quantized Linear layers run the same multiply-adds in int8, and
torch's FLOP counter does not see inside them (nor inside a compiled graph)."""

from __future__ import annotations

import warnings
from typing import Literal

import torch

Quantize = Literal["none", "int8_dynamic"]


def quantize_int8_dynamic(model: torch.nn.Module) -> torch.nn.Module:
    """Linear weights stored as int8 per tensor, activations quantized per batch at run time (torch.ao dynamic
    quantization: fbgemm on x86, qnnpack on Arm; CPU only). Embeddings, norms and attention stay float32."""
    with warnings.catch_warnings():
        # torch 2.10+ says torch.ao.quantization moves to torchao; it still ships and works in torch 2.13.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        # In place: a copy would keep the float model alive beside the int8 one and inflate the memory measured.
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def compile_forward(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile the forward with dynamic shapes, so batches of other widths (padding differs per batch) do
    not each trigger a recompile inside timed iterations. Compiling happens on the first call: the caller runs
    one untimed batch and records its time as set-up."""
    model.forward = torch.compile(model.forward, dynamic=True)  # type: ignore[method-assign]
    return model


def apply_levers(model: torch.nn.Module, *, quantize: Quantize, compile: bool) -> torch.nn.Module:
    if quantize == "int8_dynamic":
        model = quantize_int8_dynamic(model)
    if compile:
        model = compile_forward(model)
    return model
