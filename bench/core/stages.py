"""The stages of the recommendation loop, and the LLM's own sub-stages inside `scoring`.

Every timed and FLOP-counted region has one of these names; results store samples under them.
"""

from __future__ import annotations

from enum import Enum


class NamedEnum(str, Enum):
    """A str enum that prints as its value ("scoring", not "Stage.SCORING") in messages and JSON."""

    # Hash and compare as the plain string, so {Stage.SCORING: x}["scoring"] finds x (Enum hashes the name).
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Stage(NamedEnum):
    PREPROCESS = "preprocess"
    INTEREST = "interest"
    CANDIDATES = "candidates"
    SCORING = "scoring"
    RANK_FEEDBACK = "rank_feedback"
    END_TO_END = "end_to_end"  # the whole batch, enclosing the five stages above
    # Inside `scoring`: the LLM's forwards (everything else in scoring is prompt building on the host).
    LLM_FORWARD = "llm_forward"  # verbalizer: one forward over the prompt
    LLM_PREFILL = "llm_prefill"  # likelihood and generate: the prompt (generate: ends at the first token)
    LLM_CANDIDATES = "llm_candidates"  # likelihood: every candidate's title on the shared prompt cache
    LLM_DECODE_TOKEN = "llm_decode_token"  # generate: one decode step (time per output token)

    @property
    def is_llm(self) -> bool:
        return self.value.startswith("llm_")

    @property
    def parent(self) -> Stage | None:
        """The stage this one is nested in: scoring for the LLM's sub-stages, end_to_end for the loop's."""
        if self.is_llm:
            return Stage.SCORING
        return None if self is Stage.END_TO_END else Stage.END_TO_END


LOOP_STAGES: tuple[Stage, ...] = (
    Stage.PREPROCESS,
    Stage.INTEREST,
    Stage.CANDIDATES,
    Stage.SCORING,
    Stage.RANK_FEEDBACK,
)
LLM_STAGES: tuple[Stage, ...] = tuple(stage for stage in Stage if stage.is_llm)


def display_order(stages: list[Stage]) -> list[Stage]:
    """end_to_end first, then the loop's stages in order, each LLM sub-stage right after scoring."""
    rank = {stage: i for i, stage in enumerate((Stage.END_TO_END, *LOOP_STAGES[:4], *LLM_STAGES, *LOOP_STAGES[4:]))}
    return sorted(stages, key=lambda stage: rank[stage])
