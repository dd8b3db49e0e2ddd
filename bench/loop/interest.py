"""Stage 2, user interest: U = sum_i w_i e_i over the user's recent history."""

from __future__ import annotations

import torch

from bench.loop.preprocess import Batch


def user_interest(batch: Batch, item_embeddings: torch.Tensor) -> torch.Tensor:
    """(B, d) interest vectors, L2-normalised so retrieval scores are cosine similarities."""
    history = item_embeddings[batch.recent_items]  # (B, H, d)
    weights = (batch.weights * batch.recent_mask).to(history.dtype)
    interest = torch.bmm(weights.unsqueeze(1), history).squeeze(1)  # weighted sum as one batched matmul
    return torch.nn.functional.normalize(interest, dim=-1)
