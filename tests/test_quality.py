"""Ranking quality with uncertainty: topic-titled synthetic data, the fixed evaluation set, intervals and p-values."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from bench.core.errors import InputError
from bench.core.stats import bootstrap_mean_interval, paired_difference_interval
from bench.data import load_interactions
from bench.data.topics import MAIN_TOPIC_SHARE, TOPIC_WORDS, generate_topics
from bench.loop.evaluation import EvaluationSamples, evaluation_candidates, evaluation_users
from bench.loop.ranking import chance_ndcg
from bench.measurement.quality import ndcg_p_value, quality_evaluation


@pytest.fixture(scope="module")
def topical():
    return generate_topics(n_users=300, n_items=800, max_history=30, seed=3)


def test_topic_data_is_deterministic_and_reachable_by_name(topical):
    again = load_interactions(
        dataset="synthetic_topics", path=None, items_path=None, n_users=300, n_items=800, max_history=30, seed=3
    )
    assert again.catalogue.titles == topical.catalogue.titles
    assert [u.held_out_item for u in again.users] == [u.held_out_item for u in topical.users]
    other_seed = generate_topics(n_users=300, n_items=800, max_history=30, seed=4)
    assert other_seed.catalogue.titles != topical.catalogue.titles


def test_titles_are_made_of_their_topic_words(topical):
    catalogue = topical.catalogue
    assert len(set(catalogue.titles)) == catalogue.n_items  # titles identify items in prompts
    for title, [topic] in zip(catalogue.titles, catalogue.genres, strict=True):
        _, nouns = TOPIC_WORDS[topic]
        words = set(title.rsplit(" (", 1)[0].split())
        assert words & set(nouns), (title, topic)
        other_topics = {w for t, (a, n) in TOPIC_WORDS.items() if t != topic for w in (*a, *n)}
        assert not words & other_topics, (title, topic)


def test_users_prefer_a_topic_and_their_next_item_follows_it(topical):
    genre = [g[0] for g in topical.catalogue.genres]
    main_share, follows = [], []
    for user in topical.users:
        if len(user.items) < 5:  # too short for its most common topic to be the main one reliably
            continue
        counts = Counter(genre[i] for i in user.items)
        top, n = counts.most_common(1)[0]
        main_share.append(n / len(user.items))
        follows.append(genre[user.held_out_item] == top)
    # About MAIN_TOPIC_SHARE of a history is the main topic; with no preferences it would be near 1/10 plus noise.
    assert len(follows) > 100
    assert np.median(main_share) >= MAIN_TOPIC_SHARE - 0.1
    assert np.mean(follows) > 0.4  # chance: about 0.1


def test_the_evaluation_set_depends_only_on_the_seed():
    assert evaluation_users(100, 10, seed=0) == evaluation_users(100, 10, seed=0)
    assert evaluation_users(100, 10, seed=0) != evaluation_users(100, 10, seed=1)
    assert len(set(evaluation_users(100, 10, seed=0))) == 10
    assert evaluation_users(5, 10, seed=0) == [0, 1, 2, 3, 4]  # never more users than there are


def test_evaluation_candidates_hold_the_target_once_among_unseen_items():
    n_items, k = 50, 8
    seen = torch.zeros(3, n_items, dtype=torch.bool)
    seen[:, :30] = True  # items 0..29 seen by everyone
    held_out = torch.tensor([40, 41, 42])
    first = evaluation_candidates([7, 8, 9], seen, held_out, k, seed=5)
    assert first.shape == (3, k)
    assert torch.equal(first, evaluation_candidates([7, 8, 9], seen, held_out, k, seed=5))  # same every run
    for row, target in zip(first.tolist(), held_out.tolist(), strict=True):
        assert row.count(target) == 1 and len(set(row)) == k
        assert all(item >= 30 for item in row)  # never an item the user has seen
    users = list(range(40))
    many = evaluation_candidates(users, seen[:1].repeat(40, 1), torch.full((40,), 40), k, seed=6)
    spread = {row.index(40) for row in many.tolist()}
    assert len(spread) > 3  # the held-out item is not always in the same slot


def test_a_users_candidates_do_not_depend_on_the_batch_they_are_in():
    seen = torch.zeros(4, 60, dtype=torch.bool)
    held_out = torch.tensor([1, 2, 3, 4])
    together = evaluation_candidates([10, 11, 12, 13], seen, held_out, 6, seed=0)
    in_pairs = torch.cat(
        [
            evaluation_candidates([10, 11], seen[:2], held_out[:2], 6, seed=0),
            evaluation_candidates([12, 13], seen[2:], held_out[2:], 6, seed=0),
        ]
    )
    assert torch.equal(together, in_pairs)
    assert not torch.equal(together, evaluation_candidates([10, 11, 12, 13], seen, held_out, 6, seed=1))


def test_too_few_unseen_items_for_the_negatives_is_an_input_error():
    seen = torch.ones(1, 10, dtype=torch.bool)
    seen[0, :3] = False
    with pytest.raises(InputError, match=r"workload\.candidates"):
        evaluation_candidates([0], seen, torch.tensor([0]), 5, seed=0)


def test_a_small_topic_catalogue_works_or_is_refused_in_one_line():
    small = generate_topics(n_users=30, n_items=20, max_history=5, seed=1)  # some topics may have no items
    assert len(small.users) == 30
    with pytest.raises(InputError, match="num_items must be >= 20"):
        generate_topics(n_users=5, n_items=12, max_history=3, seed=0)


def test_the_p_value_is_one_half_at_chance_and_small_far_above_it():
    assert ndcg_p_value(chance_ndcg(5, 10), users=100, top_n=5, candidates=10) == pytest.approx(0.5, abs=0.03)
    # Beyond 1,000 users the simulation gives way to the normal approximation, which agrees far from the tails.
    assert ndcg_p_value(chance_ndcg(5, 10), users=5000, top_n=5, candidates=10) == pytest.approx(0.5)
    assert ndcg_p_value(0.6, users=100, top_n=5, candidates=10) == pytest.approx(1 / 20_001)  # beyond every draw
    assert ndcg_p_value(0.2, users=100, top_n=5, candidates=10) > 0.9
    assert ndcg_p_value(1.0, users=10, top_n=1, candidates=1) == 1.0  # one candidate: every ranking is the same
    far_out = ndcg_p_value(0.065, users=5000, top_n=10, candidates=100)  # z about 9: 1 - cdf would give 0
    assert 0 < far_out < 1e-15


def test_quality_figures_come_from_the_per_user_outcomes():
    ndcg = [1.0, 0.0, 1 / math.log2(3), 0.0, 1.0, 0.5, 0.0, 1.0] * 8
    hits = [int(v > 0) for v in ndcg]
    samples = EvaluationSamples(
        user_ids=[str(i) for i in range(64)], hits=hits, ndcg=ndcg, candidates=10, top_n=5, seconds=1.0
    )
    q = quality_evaluation(samples, resamples=500)
    assert q.users == 64 and q.ndcg_mean == pytest.approx(np.mean(ndcg)) and q.hit_rate == pytest.approx(5 / 8)
    assert q.ndcg_ci.low < q.ndcg_mean < q.ndcg_ci.high
    assert q.chance_hit_rate == 0.5 and q.chance_ndcg == pytest.approx(chance_ndcg(5, 10))
    assert q.above_chance == (q.p_value_ndcg < 0.05) and q.p_value_ndcg < 0.01
    assert 0 < q.p_value_hit_rate < 0.05  # 40 of 64 against 0.5
    assert q.hit_rate_ci.method == "Wilson score interval" and q.hit_rate_ci.low < 5 / 8 < q.hit_rate_ci.high


def test_bootstrap_intervals_are_reproducible_and_paired_differences_cancel_shared_noise():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    assert bootstrap_mean_interval(base) == bootstrap_mean_interval(base)
    low, high = bootstrap_mean_interval(base)
    assert low < base.mean() < high
    shifted = base + 0.01  # a small, consistent change on every user: the paired interval sees it
    diff, d_low, _ = paired_difference_interval(base, shifted)
    assert diff == pytest.approx(0.01) and d_low > 0
    unrelated = rng.random(200)
    _, u_low, u_high = paired_difference_interval(base, unrelated)
    assert u_low < 0 < u_high
    with pytest.raises(ValueError):
        paired_difference_interval(base, base[:10])
