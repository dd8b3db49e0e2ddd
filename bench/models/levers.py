"""Optimisation levers applied to a built model (scenario `optimize`): int8 dynamic quantization, oneDNN weight
prepacking and torch.compile. The attention implementation is chosen when the model is built
(bench.models.build).

FLOPs are counted before a lever is applied: quantized and prepacked Linear layers run the same multiply-adds,
and torch's FLOP counter does not see inside them (nor inside a compiled graph)."""

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


def onednn_packed(weight: torch.Tensor) -> torch.Tensor:
    """A Linear weight (out x in) reordered once into oneDNN's blocked layout, for any batch size."""
    return torch.ops.mkldnn._reorder_linear_weight(weight, None)


def onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ weight^T (+ bias) by oneDNN, on a weight from onednn_packed."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class PrepackedLinear(torch.nn.Module):
    """A Linear layer run by oneDNN on a weight reordered once, at set-up, into oneDNN's blocked layout: the
    per-call packing of the weight that a BLAS GEMM does is gone. Intel Extension for PyTorch prepacks weights
    this way, and so does torch.compile's CPU freezing pass for float32 weights when the batch size is dynamic
    (torch/_inductor/fx_passes/mkldnn_fusion.py, torch 2.13, read 2026-11-29). The same multiply-adds in
    float32; the summation order may differ (within 1e-5, tested)."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("packed_weight", onednn_packed(linear.weight.detach()))
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return onednn_linear(x, self.packed_weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def prepack_linear_layers(model: torch.nn.Module) -> int:
    """Replace every Linear layer whose weight no other module shares with a PrepackedLinear, in place (each
    float weight is freed as its packed copy replaces it); how many were replaced. A weight tied to the token
    embedding (the LM head of a tied model) stays as it is: packing it would keep a second copy of the
    embedding."""
    owners: dict[int, int] = {}
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            owners[id(parameter)] = owners.get(id(parameter), 0) + 1
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear and owners[id(child.weight)] == 1:
                setattr(parent, name, PrepackedLinear(child))
                replaced += 1
    return replaced


def compile_forward(model: torch.nn.Module) -> torch.nn.Module:
    """torch.compile the forward with dynamic shapes, so batches of other widths (padding differs per batch) do
    not each trigger a recompile inside timed iterations. Compiling happens on the first call: the caller runs
    one untimed batch and records its time as set-up."""
    model.forward = torch.compile(model.forward, dynamic=True)  # type: ignore[method-assign]
    return model


def apply_levers(
    model: torch.nn.Module, *, quantize: Quantize, compile: bool, prepack: bool = False
) -> torch.nn.Module:
    if quantize == "int8_dynamic":
        model = quantize_int8_dynamic(model)
    if prepack:
        prepack_linear_layers(model)
    if compile:
        model = compile_forward(model)
    return model
