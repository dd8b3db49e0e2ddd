"""pytest-benchmark timings of the loop's hot paths at the quickstart's shapes (scenarios/quickstart.yaml:
tiny-llama, batch 4, 512-token prompts, 256 users, 2000 items, 20 history items, 20 candidates).

Not in the default suite (pyproject adds `-m 'not benchmark_run' --benchmark-disable`). Run and store:

    .venv/bin/pytest -q -m benchmark_run tests/benchmarks/test_hot_paths.py --benchmark-enable --benchmark-autosave

Gate a later run on the last stored one (fails when a median got more than 10% slower):

    .venv/bin/pytest -q -m benchmark_run tests/benchmarks/test_hot_paths.py --benchmark-enable \
        --benchmark-compare --benchmark-compare-fail=median:10%

pytest-benchmark stores runs under .benchmarks/<machine id>/, so each machine compares with its own history.
"""

from __future__ import annotations

import pytest
import torch

from bench.data.synthetic import generate_synthetic
from bench.loop.candidates import retrieve_candidates
from bench.loop.interest import user_interest
from bench.loop.preprocess import Batch, build_user_state, prepare_batch
from bench.models.build import build_random_model
from bench.models.presets import get_preset

pytestmark = pytest.mark.benchmark_run
CPU = torch.device("cpu")
BATCH, PROMPT_TOKENS, USERS, ITEMS, HISTORY, CANDIDATES = 4, 512, 256, 2000, 20, 20


@pytest.fixture(scope="module")
def model():
    return build_random_model(get_preset("tiny-llama"), dtype=torch.float32, device=CPU, seed=0).model


@pytest.fixture(scope="module")
def workload(model) -> tuple[Batch, torch.Tensor]:
    """A batch of 4 users and unit-norm item embeddings of the model's width, as the pipeline holds them."""
    interactions = generate_synthetic(n_users=USERS, n_items=ITEMS, max_history=200, seed=0)
    state = build_user_state(interactions, history_length=HISTORY, weighting="recency", recency_decay=0.9, device=CPU)
    batch = prepare_batch(state, torch.arange(BATCH), n_items=ITEMS)
    width = model.config.hidden_size
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(ITEMS, width, generator=generator), dim=-1)
    return batch, embeddings


def test_user_interest(benchmark, workload):
    batch, embeddings = workload
    with torch.inference_mode():
        interest = benchmark(user_interest, batch, embeddings)
    assert interest.shape == (BATCH, embeddings.shape[1])


def test_retrieve_candidates(benchmark, workload):
    batch, embeddings = workload
    with torch.inference_mode():
        interest = user_interest(batch, embeddings)
        candidates = benchmark(retrieve_candidates, interest, embeddings, batch.seen_mask, CANDIDATES)
    assert candidates.shape == (BATCH, CANDIDATES)


def test_scoring_forward(benchmark, model):
    ids = torch.randint(0, model.config.vocab_size, (BATCH, PROMPT_TOKENS), generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.inference_mode():
            return model(input_ids=ids, logits_to_keep=1).logits

    forward()  # warm-up: first-call allocations and kernel selection
    logits = benchmark.pedantic(forward, rounds=10, iterations=1, warmup_rounds=1)
    assert logits.shape == (BATCH, 1, model.config.vocab_size)
