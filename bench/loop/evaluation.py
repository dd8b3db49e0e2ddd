"""Ranking quality on a fixed evaluation set, apart from the timed batches.

Each evaluated user's held-out item is ranked by the LLM among `candidates - 1` items the user has not seen,
drawn uniformly at random (the sampled-candidate protocol of LLM recommenders such as LlamaRec, arXiv
2311.02089, which ranks the ground truth among a fixed candidate list). The users, their candidates and the
held-out item's position in the list depend only on the scenario's seed and data, so two levers (or two
machines) are judged on exactly the same questions, and their difference can be tested user by user.

Sampled metrics rank models consistently only against the same negatives (Krichene and Rendle, "On Sampled
Metrics for Item Recommendation", KDD 2020): figures here compare levers and models on one scenario, they are not
comparable with full-catalogue metrics published elsewhere.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from bench.core.errors import InputError
from bench.loop.pipeline import RecommendationLoop
from bench.loop.preprocess import prepare_batch
from bench.loop.ranking import rank

PROTOCOL = "held-out item among candidates-1 unseen items drawn uniformly at random (seeded), same users every run"


@dataclass(kw_only=True)
class EvaluationSamples:
    """Raw per-user outcomes, in evaluation order (statistics are computed from these downstream)."""

    user_ids: list[str]
    hits: list[int]  # 1 where the held-out item is in the top_n
    ndcg: list[float]
    candidates: int
    top_n: int
    seconds: float  # wall time of the whole evaluation (not a timed measurement: one sample)


def evaluation_users(n_users: int, count: int, seed: int) -> list[int]:
    """`count` users drawn without replacement by a generator of their own, so the set depends only on the seed
    and the number of users, not on anything the run did before."""
    rng = np.random.default_rng([seed, 0xE7A1])
    return sorted(rng.choice(n_users, size=min(count, n_users), replace=False).tolist())


def evaluation_candidates(
    users: list[int], seen_mask: torch.Tensor, held_out: torch.Tensor, k: int, seed: int
) -> torch.Tensor:
    """(B, k) item indices: each row the held-out item at a random position among k-1 unseen items. Each user's
    row comes from a generator of its own, seeded by (seed, user), so it does not depend on the batch size."""
    rows = []
    for user, seen, target in zip(users, seen_mask.cpu(), held_out.cpu().tolist(), strict=True):
        rng = np.random.default_rng([seed, 0xCA4D, user])
        pool = torch.nonzero(~seen).flatten().numpy()
        pool = pool[pool != target]
        if pool.size < k - 1:
            raise InputError(
                f"workload.candidates: user {user} has {pool.size} unseen items besides the held-out one, fewer "
                f"than the {k - 1} negatives an evaluation draws; lower workload.candidates or add items"
            )
        negatives = torch.from_numpy(rng.permutation(pool)[: k - 1])
        position = int(rng.integers(k))
        rows.append(torch.cat([negatives[:position], torch.tensor([target]), negatives[position:]]))
    return torch.stack(rows).to(held_out.device)


@torch.inference_mode()
def evaluate(loop: RecommendationLoop, *, users: int, seed: int) -> EvaluationSamples:
    """Score the evaluation set with the loop's own scorer (the same model and levers as the timed batches), in
    batches of the scenario's batch size. Nothing here is timed per stage; the loop's user state is not changed."""
    started = time.perf_counter()
    workload = loop.workload
    chosen = evaluation_users(loop.interactions.n_users, users, seed)
    n_items = loop.interactions.catalogue.n_items
    hits: list[int] = []
    ndcg: list[float] = []
    batch_size = loop.scenario.batch_size
    for first in range(0, len(chosen), batch_size):
        ids = torch.tensor(chosen[first : first + batch_size], dtype=torch.long, device=loop.device)
        batch = prepare_batch(loop.state, ids, n_items=n_items)
        history = batch.histories()
        candidates = evaluation_candidates(
            chosen[first : first + batch_size], batch.seen_mask, batch.held_out, workload.candidates, seed
        )
        scored = loop.scorer.score(history, candidates, lambda _name: nullcontext())
        outcome = rank(candidates, scored.scores, batch.held_out, workload.top_n)
        hits += outcome.hits.int().tolist()
        ndcg += outcome.ndcg.tolist()
    return EvaluationSamples(
        user_ids=[loop.interactions.users[u].user_id for u in chosen],
        hits=hits,
        ndcg=ndcg,
        candidates=workload.candidates,
        top_n=workload.top_n,
        seconds=time.perf_counter() - started,
    )
