"""The one in-memory shape every dataset reader produces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Catalogue:
    """Items, indexed densely 0..n_items-1."""

    item_ids: list[str]  # the dataset's own ids, as strings
    titles: list[str]
    genres: list[list[str]]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass(kw_only=True)
class UserHistory:
    """One user's interactions in chronological order; the last one is held out as feedback."""

    user_id: str
    items: np.ndarray  # int64 dense item indices, oldest first, excluding the held-out item
    ratings: np.ndarray  # float32, same length as items
    timestamps: np.ndarray  # int64 seconds, non-decreasing
    held_out_item: int  # dense index of the user's last interaction
    held_out_rating: float


@dataclass
class Interactions:
    """A dataset after preprocessing: the catalogue and per-user chronological histories."""

    source: str  # "synthetic", "movielens" or "amazon"
    catalogue: Catalogue
    users: list[UserHistory]
    stats: dict[str, float] = field(default_factory=dict)  # n_interactions, history length mean/median/max...

    @property
    def n_users(self) -> int:
        return len(self.users)

    def history_stats(self) -> dict[str, float]:
        """Counts and history-length summary (history = interactions before the held-out one)."""
        lengths = np.array([len(u.items) for u in self.users], dtype=np.int64)
        if lengths.size == 0:
            return {"n_users": 0, "n_items": self.catalogue.n_items, "n_interactions": 0}
        return {
            "n_users": int(lengths.size),
            "n_items": self.catalogue.n_items,
            # Every user also has the held-out interaction.
            "n_interactions": int(lengths.sum() + lengths.size),
            "history_len_mean": float(lengths.mean()),
            "history_len_median": float(np.median(lengths)),
            "history_len_max": int(lengths.max()),
        }

    @classmethod
    def from_events(
        cls,
        *,
        source: str,
        catalogue: Catalogue,
        user_ids: Sequence[str],
        user_codes: np.ndarray,
        item_codes: np.ndarray,
        ratings: np.ndarray,
        timestamps: np.ndarray,
        max_users: int | None,
        max_history: int,
        min_interactions: int = 3,
    ) -> Interactions:
        """Build per-user histories from flat event arrays (one entry per rating, any order).

        ``user_codes`` index ``user_ids``, whose order is the "id order" that ``max_users`` cuts;
        ``item_codes`` index ``catalogue``. Users with fewer than ``min_interactions`` events are
        dropped before the ``max_users`` cut, and only the latest ``max_history + 1`` events of a
        user are kept (the last of them becomes the held-out item). ``stats`` gets the summary of
        ``history_stats`` plus the number of events read and users dropped.
        """
        user_codes = np.asarray(user_codes, dtype=np.int64)
        timestamps = np.asarray(timestamps, dtype=np.int64)
        # Two stable sorts: by time, then by user, so equal timestamps keep their file order.
        order = np.argsort(timestamps, kind="stable")
        order = order[np.argsort(user_codes[order], kind="stable")]
        items_sorted = np.asarray(item_codes, dtype=np.int64)[order]
        ratings_sorted = np.asarray(ratings, dtype=np.float32)[order]
        times_sorted = timestamps[order]

        counts = np.bincount(user_codes, minlength=len(user_ids))
        ends = np.cumsum(counts)
        eligible = np.flatnonzero(counts >= min_interactions)
        if max_users is not None:
            eligible = eligible[:max_users]

        users: list[UserHistory] = []
        keep = max_history + 1
        for code in eligible.tolist():
            end = int(ends[code])
            start = max(end - int(counts[code]), end - keep)
            users.append(
                UserHistory(
                    user_id=str(user_ids[code]),
                    items=items_sorted[start : end - 1],
                    ratings=ratings_sorted[start : end - 1],
                    timestamps=times_sorted[start : end - 1],
                    held_out_item=int(items_sorted[end - 1]),
                    held_out_rating=float(ratings_sorted[end - 1]),
                )
            )
        result = cls(source=source, catalogue=catalogue, users=users)
        result.stats = result.history_stats()
        result.stats["n_events_read"] = int(user_codes.size)
        result.stats["n_users_too_short"] = int(np.count_nonzero(counts < min_interactions))
        return result
