"""Stage 3, candidate generation: exact top-K items by similarity to the interest vector."""

from __future__ import annotations

import torch


def retrieve_candidates(
    interest: torch.Tensor, item_embeddings: torch.Tensor, seen_mask: torch.Tensor, k: int
) -> torch.Tensor:
    """(B, K) item indices, most similar first, never an item the user has already seen."""
    similarity = interest @ item_embeddings.T  # (B, I), exact: one batched matmul over the catalogue
    similarity = similarity.masked_fill(seen_mask, float("-inf"))
    return similarity.topk(k, dim=1).indices
