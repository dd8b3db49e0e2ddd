"""Stage 5, rank and feedback: top-n from the LLM's scores, hit rate and NDCG against the held-out item,
and an update of each user's interest weights from that feedback."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.loop.preprocess import Batch, UserState


@dataclass
class RankOutcome:
    recommended: torch.Tensor  # (B, n) item indices, best first
    hits: torch.Tensor  # (B,) bool: held-out item among the top n
    ndcg: torch.Tensor  # (B,) float: 1/log2(rank+2) for a hit, else 0 (one relevant item, so IDCG = 1)
    held_out_in_candidates: torch.Tensor  # (B,) bool: retrieval recall of the held-out item


def rank(candidates: torch.Tensor, scores: torch.Tensor, held_out: torch.Tensor, top_n: int) -> RankOutcome:
    order = scores.argsort(dim=1, descending=True)
    ranked = candidates.gather(1, order)
    recommended = ranked[:, :top_n]
    match = recommended == held_out.unsqueeze(1)
    hits = match.any(dim=1)
    positions = match.float().argmax(dim=1)
    ndcg = torch.where(hits, 1.0 / torch.log2(positions.float() + 2.0), torch.zeros_like(positions.float()))
    in_candidates = (candidates == held_out.unsqueeze(1)).any(dim=1)
    return RankOutcome(recommended, hits, ndcg, in_candidates)


def apply_feedback(
    state: UserState,
    batch: Batch,
    outcome: RankOutcome,
    item_embeddings: torch.Tensor,
    learning_rate: float,
) -> None:
    """Move weight towards history items like the one the user chose and away from ones like the
    items shown to them, then renormalise; the next request for these users sees the new weights."""
    history = item_embeddings[batch.recent_items]  # (B, H, d)
    chosen = item_embeddings[batch.held_out]  # (B, d)
    shown = item_embeddings[outcome.recommended].mean(dim=1)  # (B, d)
    affinity = torch.einsum("bhd,bd->bh", history, chosen - shown)
    updated = (batch.weights + learning_rate * affinity).clamp_min(0.0) * batch.recent_mask
    total = updated.sum(dim=1, keepdim=True)
    # A user whose weights all hit zero keeps the old ones instead of dividing by zero.
    updated = torch.where(total > 0, updated / total.clamp_min(1e-12), batch.weights)
    state.weights[batch.users] = updated


def chance_hit_rate(top_n: int, candidates: int) -> float:
    """Hit rate of a random ranking, given that the held-out item is among the candidates."""
    return top_n / candidates


def chance_ndcg(top_n: int, candidates: int) -> float:
    """Expected NDCG@n of a random ranking, given that the held-out item is among the candidates."""
    return sum(1.0 / math.log2(rank + 2) for rank in range(top_n)) / candidates
