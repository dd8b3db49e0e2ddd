"""Datasets: a seeded synthetic generator and readers for MovieLens and Amazon Reviews 2023."""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import InputError
from bench.data.interactions import Catalogue, Interactions, UserHistory
from bench.data.synthetic import generate_synthetic
from bench.data.topics import generate_topics

DATASETS = ("synthetic", "synthetic_topics", "movielens", "amazon")

__all__ = [
    "DATASETS",
    "Catalogue",
    "Interactions",
    "UserHistory",
    "generate_synthetic",
    "generate_topics",
    "load_interactions",
]


_GENERATORS = {"synthetic": generate_synthetic, "synthetic_topics": generate_topics}


def load_interactions(
    *,
    dataset: str,
    path: Path | None,
    items_path: Path | None,
    n_users: int,
    n_items: int,
    max_history: int,
    seed: int,
) -> Interactions:
    """Load ``dataset``: "synthetic" generates exactly ``n_users`` x ``n_items``; the file readers
    take ``n_users`` as the most users to keep and ignore ``n_items`` (the file sets it)."""
    if dataset in _GENERATORS:
        if path is not None or items_path is not None:
            raise InputError(f"dataset {dataset!r} takes no path or items_path")
        return _GENERATORS[dataset](n_users=n_users, n_items=n_items, max_history=max_history, seed=seed)
    if dataset not in DATASETS:
        raise InputError(f"dataset {dataset!r} is unknown; expected one of {', '.join(DATASETS)}")
    if path is None:
        raise InputError(f"dataset {dataset!r} needs a path")
    # The file readers use pandas, imported only when a file is read (a synthetic run never needs it).
    if dataset == "movielens":
        from bench.data.movielens import read_movielens

        if items_path is not None:
            raise InputError(f"{items_path}: items_path is only used by the amazon dataset")
        return read_movielens(Path(path), max_users=n_users, max_history=max_history)
    from bench.data.amazon import read_amazon

    return read_amazon(
        Path(path),
        max_users=n_users,
        max_history=max_history,
        items_path=Path(items_path) if items_path is not None else None,
    )
