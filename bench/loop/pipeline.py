"""The recommendation loop: five stages, each run for real and entered through `stage(name)`, so the same
code runs under the latency tracker (timed iterations) and the FLOP tracker (calibration batch)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from bench.core.stages import Stage
from bench.data.interactions import Interactions
from bench.data.tokenizer import TextTokenizer
from bench.loop.batching import BatchPlanner
from bench.loop.candidates import retrieve_candidates
from bench.loop.embeddings import item_embeddings
from bench.loop.interest import user_interest
from bench.loop.preprocess import build_user_state, prepare_batch
from bench.loop.prompts import PromptBuilder
from bench.loop.ranking import apply_feedback, rank
from bench.loop.scoring import ScoreOutput, StageContext, make_scorer
from bench.models.analytic import ForwardShape
from bench.scenarios.spec import Scenario


@dataclass(kw_only=True)
class BatchRecord:
    """What one batch did: quality counts and the shapes of the work, for FLOP and memory accounting."""

    users: int
    hits: int
    ndcg_sum: float
    held_out_in_candidates: int
    prompt_tokens: list[int]
    forwards: list[ForwardShape]
    useful_forwards: list[ForwardShape]  # the same requests' work without padding (one shape per request)
    generated_tokens: int
    interest_shape: tuple[int, int, int]  # (B, H, d)
    retrieval_shape: tuple[int, int, int]  # (B, I, d)


@dataclass
class SetupTimings:
    """One-off preprocessing, in seconds (single samples, not statistics)."""

    seconds: dict[str, float] = field(default_factory=dict)


class RecommendationLoop:
    def __init__(
        self,
        scenario: Scenario,
        interactions: Interactions,
        model: torch.nn.Module,
        tokenizer: TextTokenizer,
        device: torch.device,
        *,
        title_tokens: list[list[int]],
    ) -> None:
        """`title_tokens`: each catalogue title tokenized by `tokenizer` (bench.loop.prompts.tokenize_titles)."""
        self.scenario = scenario
        self.workload = scenario.workload
        self.interactions = interactions
        self.model = model
        self.device = device
        self.setup = SetupTimings()
        with self._setup_timer("item_embeddings"):
            self.item_embeddings = item_embeddings(
                self.workload.item_embeddings,
                model=model,
                title_tokens=title_tokens,
                titles=interactions.catalogue.titles,
                device=device,
            )
        with self._setup_timer("user_state"):
            self.state = build_user_state(
                interactions,
                history_length=self.workload.history_length,
                weighting=self.workload.interest_weighting,
                recency_decay=self.workload.recency_decay,
                device=device,
            )
        self.prompts = PromptBuilder(
            tokenizer,
            title_tokens,
            max_prompt_tokens=scenario.max_prompt_tokens,
            title_max_tokens=self.workload.title_max_tokens,
            history_length=self.workload.history_length,
        )
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.scorer = make_scorer(
            scenario.scoring.mode,
            model,
            self.prompts,
            pad_id=pad_id or 0,
            device=device,
            new_tokens=scenario.scoring.new_tokens,
            packed=scenario.batching.padding == "packed",
        )
        self.batches = BatchPlanner(
            n_users=interactions.n_users,
            batch_size=scenario.batch_size,
            padding=scenario.batching.padding,
            window=scenario.batching.window,
            prompt_length=self._history_prompt_tokens,
        )

    def set_model(self, model: torch.nn.Module) -> None:
        """Swap in a changed model (a quantized or compiled one): the scorer runs it from the next batch on."""
        self.model = model
        self.scorer.model = model

    def _history_prompt_tokens(self, user: int) -> int:
        """The part of a user's prompt that differs between users most: its history lines."""
        row, mask = self.state.recent_items[user], self.state.recent_mask[user]
        return self.prompts.history_tokens(row[mask].tolist())

    def _setup_timer(self, name: str) -> _Timer:
        return _Timer(self.setup.seconds, name)

    def next_users(self) -> torch.Tensor:
        """The next batch of users: in arrival order, or bucketed by prompt length (bench.loop.batching)."""
        return torch.tensor(self.batches.next_batch(), dtype=torch.long, device=self.device)

    @torch.inference_mode()
    def run_batch(self, users: torch.Tensor, stage: StageContext) -> BatchRecord:
        n_items = self.interactions.catalogue.n_items
        with stage(Stage.END_TO_END):
            with stage(Stage.PREPROCESS):
                batch = prepare_batch(self.state, users, n_items=n_items)
                history = batch.histories()
            with stage(Stage.INTEREST):
                interest = user_interest(batch, self.item_embeddings)
            with stage(Stage.CANDIDATES):
                candidates = retrieve_candidates(
                    interest, self.item_embeddings, batch.seen_mask, self.workload.candidates
                )
            with stage(Stage.SCORING):
                scored: ScoreOutput = self.scorer.score(history, candidates, stage)
            with stage(Stage.RANK_FEEDBACK):
                outcome = rank(candidates, scored.scores, batch.held_out, self.workload.top_n)
                apply_feedback(self.state, batch, outcome, self.item_embeddings, self.workload.feedback_learning_rate)
                hits = int(outcome.hits.sum())
        dim = self.item_embeddings.shape[1]
        return BatchRecord(
            users=len(users),
            hits=hits,
            ndcg_sum=float(outcome.ndcg.sum()),
            held_out_in_candidates=int(outcome.held_out_in_candidates.sum()),
            prompt_tokens=scored.prompt_tokens,
            forwards=scored.forwards,
            useful_forwards=scored.useful_forwards,
            generated_tokens=scored.generated_tokens,
            interest_shape=(len(users), batch.recent_items.shape[1], dim),
            retrieval_shape=(len(users), n_items, dim),
        )


class _Timer:
    """Wall-clock timer for one-off setup steps, written into a dict of seconds."""

    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.into[self.name] = time.perf_counter() - self.started
