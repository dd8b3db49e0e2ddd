"""Stage 1, preprocess: per-user state built once from the interactions, and the per-batch gather.

Setup (once): histories become padded tensors, titles are tokenized. Per batch: the users' recent
history, their interest weights and the mask of items they have already seen are gathered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.data.interactions import Interactions


@dataclass(kw_only=True)
class UserState:
    """All users' histories as padded tensors; `weights` is updated by feedback (stage 5)."""

    recent_items: torch.Tensor  # (U, H) int64, most recent last, left-padded with 0
    recent_mask: torch.Tensor  # (U, H) bool, True where an item is present
    ratings: torch.Tensor  # (U, H) float32
    weights: torch.Tensor  # (U, H) float32 interest weights, 0 on padding
    seen_items: torch.Tensor  # (U, S) int64: every history item (S = longest history), padded with -1
    held_out: torch.Tensor  # (U,) int64: each user's last interaction, the feedback target


@dataclass(kw_only=True)
class Batch:
    users: torch.Tensor  # (B,) user indices
    recent_items: torch.Tensor  # (B, H)
    recent_mask: torch.Tensor  # (B, H)
    weights: torch.Tensor  # (B, H)
    seen_mask: torch.Tensor  # (B, I) bool: True for items the user has already seen
    held_out: torch.Tensor  # (B,)

    def histories(self) -> list[list[int]]:
        """Each user's recent history items, oldest first, without padding: what a prompt lists."""
        return [row[mask].tolist() for row, mask in zip(self.recent_items, self.recent_mask, strict=True)]


def build_user_state(
    interactions: Interactions,
    *,
    history_length: int,
    weighting: str,
    recency_decay: float,
    device: torch.device,
) -> UserState:
    n_users = interactions.n_users
    longest = max(len(u.items) for u in interactions.users)
    recent = np.zeros((n_users, history_length), dtype=np.int64)
    mask = np.zeros((n_users, history_length), dtype=bool)
    ratings = np.zeros((n_users, history_length), dtype=np.float32)
    seen = np.full((n_users, longest), -1, dtype=np.int64)
    for row, user in enumerate(interactions.users):
        tail = user.items[-history_length:]
        recent[row, history_length - len(tail) :] = tail
        mask[row, history_length - len(tail) :] = True
        ratings[row, history_length - len(tail) :] = user.ratings[-history_length:]
        seen[row, : len(user.items)] = user.items
    held_out = np.array([u.held_out_item for u in interactions.users], dtype=np.int64)
    state = UserState(
        recent_items=torch.from_numpy(recent),
        recent_mask=torch.from_numpy(mask),
        ratings=torch.from_numpy(ratings),
        weights=torch.zeros(n_users, history_length),
        seen_items=torch.from_numpy(seen),
        held_out=torch.from_numpy(held_out),
    )
    state.weights = initial_weights(state, weighting=weighting, recency_decay=recency_decay)
    return UserState(**{name: value.to(device) for name, value in vars(state).items()})


def initial_weights(state: UserState, *, weighting: str, recency_decay: float) -> torch.Tensor:
    """Recency: decay**(steps back from the newest item); rating: the rating itself. Rows sum to 1."""
    history_length = state.recent_items.shape[1]
    if weighting == "rating":
        raw = state.ratings.clone()
    else:
        steps_back = torch.arange(history_length - 1, -1, -1, dtype=torch.float32)
        raw = (recency_decay**steps_back).expand_as(state.ratings).clone()
    raw = raw * state.recent_mask
    return raw / raw.sum(dim=1, keepdim=True).clamp_min(1e-12)


def prepare_batch(state: UserState, users: torch.Tensor, *, n_items: int) -> Batch:
    """Gather the batch's rows and mark seen items, so retrieval can exclude them."""
    seen_rows = state.seen_items[users]
    seen_mask = torch.zeros(len(users), n_items + 1, dtype=torch.bool, device=seen_rows.device)
    # Padding (-1) is sent to the extra last column, which is dropped.
    seen_mask.scatter_(1, torch.where(seen_rows < 0, n_items, seen_rows), True)
    return Batch(
        users=users,
        recent_items=state.recent_items[users],
        recent_mask=state.recent_mask[users],
        weights=state.weights[users],
        seen_mask=seen_mask[:, :n_items],
        held_out=state.held_out[users],
    )
