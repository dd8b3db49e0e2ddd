"""How much memory a point will need, estimated from its scenario before anything is built, so that a run that
cannot fit is refused by `validate --here` and before the first point of a sweep starts.

An estimate, not a measurement: the model's share comes from the analytic formulas (weights, the largest KV
cache and activations of the forwards the scoring mode runs); the data's share from per-user and per-item sizes
measured on this project's synthetic generator (below). Measured peaks are in every result.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.device import Device
from bench.models.analytic import ForwardShape, memory_estimate
from bench.models.architecture import Architecture
from bench.scenarios.spec import Scenario

# Measured here (2026-11-29, numpy histories, Python titles): 100,000 synthetic users with histories of 43 items
# on average took 264 MB (2.6 kB a user); 1,000,000 items took 274 MB (274 B an item) before tokenization.
BYTES_PER_USER = 2_700
BYTES_PER_ITEM = 300
BYTES_PER_TITLE_TOKEN = 8  # a Python list of ints, the tokens themselves shared
FULL_HISTORY_CAP = 200  # the longest history kept per user (bench.measurement.prepare)
FILE_DATA_FACTOR = 4  # a dataset read from files: parsed tables take about this many times the file size
MINILM_DIM = 384
# torch, transformers and the interpreter before any model exists: ~460 MB RSS measured at the start of a
# quickstart set-up window here.
RUNTIME_BYTES = 500 * 2**20


@dataclass(frozen=True)
class Footprint:
    """Estimated bytes by part; `device_parts` live on the accelerator for a CUDA point."""

    parts: dict[str, int]
    device_parts: frozenset[str]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def on(self, device: bool) -> int:
        """Bytes on the accelerator (device=True) or in host memory."""
        return sum(v for k, v in self.parts.items() if (k in self.device_parts) == device)

    def describe(self, *, device: bool | None = None) -> str:
        chosen = [(k, v) for k, v in self.parts.items() if device is None or (k in self.device_parts) == device]
        return ", ".join(f"{name} {value / 2**30:.2f} GiB" for name, value in chosen if value)


def worst_case_forwards(scenario: Scenario) -> list[ForwardShape]:
    """The largest forwards a batch of this scenario can run (every prompt at max_prompt_tokens)."""
    batch, prompt = scenario.batch_size, scenario.max_prompt_tokens
    mode = scenario.scoring.mode
    if mode == "verbalizer":
        return [ForwardShape(batch=batch, new_tokens=prompt, context=prompt, logits=1, keeps_cache=False)]
    prefill = ForwardShape(batch=batch, new_tokens=prompt, context=prompt, logits=1)
    if mode == "likelihood":
        k, title = scenario.workload.candidates, scenario.workload.title_max_tokens
        return [prefill, ForwardShape(batch=batch * k, new_tokens=title, context=prompt + title, logits=title)]
    total = prompt + scenario.scoring.new_tokens
    return [prefill, ForwardShape(batch=batch, new_tokens=1, context=total, logits=1)]


def run_footprint(scenario: Scenario, arch: Architecture, *, dtype: str, data_file_bytes: int = 0) -> Footprint:
    workload = scenario.workload
    model = memory_estimate(arch, worst_case_forwards(scenario), dtype=dtype)
    if workload.is_synthetic:
        users, items = workload.num_users, workload.num_items
        data = users * BYTES_PER_USER + items * (BYTES_PER_ITEM + BYTES_PER_TITLE_TOKEN * workload.title_max_tokens)
    else:  # the files decide how many users and items there are
        users, items = workload.num_users, data_file_bytes // 64  # a line of a ratings file is tens of bytes
        data = FILE_DATA_FACTOR * data_file_bytes
    dim = MINILM_DIM if workload.item_embeddings == "minilm" else arch.hidden_size
    history = workload.history_length
    parts = {
        "weights": model["weights_bytes"],
        "KV cache": model["kv_cache_bytes"],
        "activations": model["activations_bytes"],
        "data": data,
        "item embeddings": 4 * items * dim,
        "user state": users * (17 * history + 8 * (FULL_HISTORY_CAP + 1)),
        "per-batch buffers": 5 * scenario.batch_size * items,  # seen mask (bool) and similarity scores (float32)
        "runtime": RUNTIME_BYTES,
    }
    on_device = {"weights", "KV cache", "activations", "item embeddings", "per-batch buffers"}
    return Footprint(parts, frozenset(on_device) if Device.parse(scenario.device).is_cuda else frozenset())
