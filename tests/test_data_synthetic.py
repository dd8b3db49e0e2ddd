"""The synthetic generator: determinism and MovieLens-like statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.core.errors import InputError
from bench.data import load_interactions
from bench.data.interactions import Catalogue, Interactions
from bench.data.synthetic import GENRES, generate_synthetic

ZIPF = 1.05


@pytest.fixture(scope="module")
def big() -> Interactions:
    return generate_synthetic(n_users=4000, n_items=2000, max_history=50, seed=7, zipf_exponent=ZIPF)


def _all_items(data: Interactions) -> np.ndarray:
    return np.concatenate([np.append(u.items, u.held_out_item) for u in data.users])


def test_same_seed_gives_identical_data() -> None:
    a = generate_synthetic(n_users=300, n_items=400, max_history=20, seed=3)
    b = generate_synthetic(n_users=300, n_items=400, max_history=20, seed=3)
    assert a.catalogue == b.catalogue
    assert a.stats == b.stats
    for ua, ub in zip(a.users, b.users, strict=True):
        assert ua.user_id == ub.user_id
        np.testing.assert_array_equal(ua.items, ub.items)
        np.testing.assert_array_equal(ua.ratings, ub.ratings)
        np.testing.assert_array_equal(ua.timestamps, ub.timestamps)
        assert (ua.held_out_item, ua.held_out_rating) == (ub.held_out_item, ub.held_out_rating)


def test_different_seeds_differ() -> None:
    a = generate_synthetic(n_users=300, n_items=400, max_history=20, seed=3)
    b = generate_synthetic(n_users=300, n_items=400, max_history=20, seed=4)
    assert a.catalogue.titles != b.catalogue.titles
    assert not np.array_equal(_all_items(a), _all_items(b))


def test_catalogue_does_not_depend_on_user_count() -> None:
    small = generate_synthetic(n_users=10, n_items=300, max_history=5, seed=1)
    large = generate_synthetic(n_users=500, n_items=300, max_history=40, seed=1)
    assert small.catalogue == large.catalogue


def test_sizes_and_stats(big: Interactions) -> None:
    assert big.source == "synthetic"
    assert big.n_users == 4000
    assert big.catalogue.n_items == 2000
    assert len(big.catalogue.titles) == len(big.catalogue.genres) == 2000
    lengths = np.array([len(u.items) for u in big.users])
    assert big.stats["n_interactions"] == lengths.sum() + big.n_users
    assert big.stats["history_len_mean"] == pytest.approx(lengths.mean())
    assert big.stats["history_len_median"] == np.median(lengths)
    assert big.stats["history_len_max"] == lengths.max()
    assert big.stats["seed"] == 7
    assert big.stats["zipf_exponent"] == ZIPF


def test_item_popularity_is_zipf(big: Interactions) -> None:
    counts = np.sort(np.bincount(_all_items(big), minlength=big.catalogue.n_items))[::-1]
    # Fit the rank-frequency slope past the head (distinct items per user saturate the top few
    # items, as in MovieLens) and before the sparse tail, where counts are too small to fit.
    ranks = np.arange(1, counts.size + 1)
    window = slice(9, 400)
    slope = np.polyfit(np.log(ranks[window]), np.log(counts[window]), 1)[0]
    assert -ZIPF - 0.3 < slope < -ZIPF + 0.3
    top_share = counts[: counts.size // 10].sum() / counts.sum()
    assert top_share > 0.5


def test_history_lengths_long_tailed_and_bounded(big: Interactions) -> None:
    lengths = np.array([len(u.items) for u in big.users])
    assert lengths.min() >= 2  # at least 3 interactions, one held out
    assert lengths.max() <= 50
    assert lengths.mean() > np.median(lengths)
    # MovieLens-like: median well below the mean, and a tail reaching the cap.
    assert 0.45 < np.median(lengths) / lengths.mean() < 0.85
    assert (lengths == 50).any()
    assert (lengths < 10).mean() > 0.3


def test_history_cap_from_small_catalogue() -> None:
    data = generate_synthetic(n_users=500, n_items=8, max_history=50, seed=0)
    lengths = np.array([len(u.items) for u in data.users])
    # Capped at n_items - 1 interactions, held-out included.
    assert lengths.max() <= 6
    assert lengths.min() >= 2
    # Long histories over 8 Zipf items exercise the generator's fallback sampler: still distinct.
    for user in data.users:
        everything = np.append(user.items, user.held_out_item)
        assert np.unique(everything).size == everything.size


def test_items_distinct_per_user(big: Interactions) -> None:
    for user in big.users:
        everything = np.append(user.items, user.held_out_item)
        assert np.unique(everything).size == everything.size
        assert everything.min() >= 0 and everything.max() < big.catalogue.n_items


def test_ratings_movielens_like(big: Interactions) -> None:
    ratings = np.concatenate([np.append(u.ratings, u.held_out_rating) for u in big.users])
    assert set(np.unique(ratings).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    shares = np.bincount(ratings.astype(int), minlength=6)[1:] / ratings.size
    assert shares.argmax() == 3  # 4 stars is the most common
    np.testing.assert_allclose(shares, [0.06, 0.11, 0.26, 0.35, 0.22], atol=0.02)


def test_dtypes_and_time_order(big: Interactions) -> None:
    for user in big.users:
        assert user.items.dtype == np.int64
        assert user.ratings.dtype == np.float32
        assert user.timestamps.dtype == np.int64
        assert len(user.items) == len(user.ratings) == len(user.timestamps)
        assert np.all(np.diff(user.timestamps) >= 0)
        assert isinstance(user.held_out_item, int)


def test_held_out_is_last_interaction() -> None:
    # The generator hands shuffled events to Interactions.from_events, which splits them; check
    # that split on events whose order we know: user "a" has items 0..5 at times 10..60, given
    # in reverse, and a cap of 3 history items.
    catalogue = Catalogue(item_ids=[str(i) for i in range(6)], titles=list("abcdef"), genres=[[]] * 6)
    times = np.array([60, 50, 40, 30, 20, 10])
    data = Interactions.from_events(
        source="synthetic",
        catalogue=catalogue,
        user_ids=["a"],
        user_codes=np.zeros(6, dtype=np.int64),
        item_codes=np.array([5, 4, 3, 2, 1, 0]),
        ratings=np.array([5, 4, 3, 2, 1, 1], dtype=np.float32),
        timestamps=times,
        max_users=None,
        max_history=3,
    )
    (user,) = data.users
    assert user.held_out_item == 5 and user.held_out_rating == 5.0
    assert user.items.tolist() == [2, 3, 4]
    assert user.timestamps.tolist() == [30, 40, 50]

    generated = generate_synthetic(n_users=200, n_items=300, max_history=40, seed=5)
    for user in generated.users:
        assert user.held_out_item not in user.items.tolist()


def test_titles_and_genres_plausible(big: Interactions) -> None:
    titles = big.catalogue.titles
    assert len(set(titles)) == len(titles)  # titles identify items in prompts
    word_counts = [len(t.rsplit(" (", 1)[0].split()) for t in titles]
    assert min(word_counts) >= 2 and max(word_counts) <= 8
    assert len(set(word_counts)) >= 5  # varied lengths
    assert all(t.endswith(")") and t[-5:-1].isdigit() for t in titles)
    for genres in big.catalogue.genres:
        assert 1 <= len(genres) <= 3
        assert len(set(genres)) == len(genres)
        assert set(genres) <= set(GENRES)
    assert len(GENRES) == 18


@pytest.mark.benchmark_run  # a speed bar: not in the default suite, which must pass on a busy machine
def test_10k_users_generate_in_under_2_s() -> None:
    start = time.perf_counter()
    generate_synthetic(n_users=10_000, n_items=5_000, max_history=50, seed=0)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0, "n_items": 10, "max_history": 5}, "num_users"),
        ({"n_users": 5, "n_items": 2, "max_history": 5}, "num_items"),
        ({"n_users": 5, "n_items": 10, "max_history": 0}, "history_length"),
    ],
)
def test_bad_settings(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        generate_synthetic(seed=0, **kwargs)


def test_dispatcher_synthetic_and_errors(tmp_path) -> None:
    data = load_interactions(
        dataset="synthetic", path=None, items_path=None, n_users=50, n_items=60, max_history=10, seed=2
    )
    assert data.n_users == 50 and data.catalogue.n_items == 60
    with pytest.raises(InputError, match="unknown"):
        load_interactions(
            dataset="netflix", path=tmp_path, items_path=None, n_users=5, n_items=5, max_history=5, seed=0
        )
    with pytest.raises(InputError, match="needs a path"):
        load_interactions(dataset="movielens", path=None, items_path=None, n_users=5, n_items=5, max_history=5, seed=0)
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match="nowhere"):
        load_interactions(dataset="amazon", path=missing, items_path=None, n_users=5, n_items=5, max_history=5, seed=0)
