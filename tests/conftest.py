"""Shared fixtures: tiny scenarios that build in milliseconds and run in a second or two."""

from __future__ import annotations

import gc

# The suite's imports (torch, transformers, then every test module's) run with the garbage collector paused, as a
# run's do (bench.core.collector); pytest_collection_finish below freezes what they made and resumes collecting.
gc.disable()

from pathlib import Path

import pytest
import torch

# Most tests run the default engine, transformers, whose model classes bench.models.build imports only when a model
# is built: imported here instead, with the collector paused, not inside whichever test builds one first (where
# full collections over torch's and transformers' objects cost time: pytest took 101 s, against 79 s with these
# imports here, under two busy loops on the 2-core AVX2 EPYC, 2026-11-29).
import transformers.models.auto.modeling_auto
import transformers.models.llama.modeling_llama
import transformers.models.mistral.modeling_mistral
import transformers.models.qwen2.modeling_qwen2  # noqa: F401
import yaml

from bench.core.collector import freeze_imported_objects
from bench.data.synthetic import generate_synthetic
from bench.data.tokenizer import train_catalogue_tokenizer
from bench.loop.prompts import LETTERS, TEMPLATE_TEXTS
from bench.models.architecture import Architecture
from bench.models.build import build_random_model

TINY_ARCH = {
    "family": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "vocab_size": 512,
    "tie_embeddings": True,
    "max_position_embeddings": 1024,
}


def pytest_collection_finish(session: pytest.Session) -> None:
    freeze_imported_objects()
    gc.enable()


def tiny_scenario_dict(name: str = "tiny", **overrides: object) -> dict:
    scenario: dict = {
        "name": name,
        "model": {"architecture": dict(TINY_ARCH)},
        "device": "cpu",
        "batch_size": 2,
        "max_prompt_tokens": 256,
        "workload": {"num_users": 16, "num_items": 120, "history_length": 8, "candidates": 6, "top_n": 3},
        "repetitions": {"warmup": 1, "min_iterations": 3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(scenario.get(key), dict) and key != "model":
            scenario[key] = {**scenario[key], **value}
        else:
            scenario[key] = value
    return scenario


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write a scenario dict as YAML and return its path."""

    def write(data: dict, filename: str | None = None) -> Path:
        path = tmp_path / (filename or f"{data.get('name', 'scenario')}.yaml")
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def tiny_arch() -> Architecture:
    return Architecture(**TINY_ARCH)


@pytest.fixture(scope="session")
def tiny_model(tiny_arch: Architecture):
    return build_random_model(tiny_arch, dtype=torch.float32, device=torch.device("cpu"), seed=0).model


@pytest.fixture(scope="session")
def tiny_interactions():
    return generate_synthetic(n_users=16, n_items=120, max_history=30, seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_interactions):
    texts = [*tiny_interactions.catalogue.titles, *TEMPLATE_TEXTS, *LETTERS]
    return train_catalogue_tokenizer(texts, vocab_size=512)


@pytest.fixture(autouse=True)
def coarse_report_figures(monkeypatch):
    """Report figures at 40 dpi instead of 100: the same drawing, layout and captions at a fraction of the
    rasterising, so the suite stays within its time on a busy machine (tests judge content, not pixels)."""
    import bench.report.plots

    monkeypatch.setattr(bench.report.plots, "DPI", 40)


@pytest.fixture
def draw_only(monkeypatch):
    """Call with report figure names: those are drawn, every other figure of a report is planned (name, title,
    caption) but drawn blank. For tests about which figures a report has or about other figures; the report
    tests draw each kind for real."""
    from matplotlib.figure import Figure

    import bench.report.plots

    real = bench.report.plots.draw

    def only(*names: str) -> None:
        def draw(plan, colors):
            return real(plan, colors) if plan.name in names else Figure(figsize=(1, 1))

        monkeypatch.setattr(bench.report.plots, "draw", draw)

    return only
