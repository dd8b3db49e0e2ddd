"""A point's inputs before any model exists: the interactions, the tokenizer (the checkpoint's own, or a BPE
trained on the catalogue) and every title tokenized; and the check that the prompts can fit, which needs
them. `prepare` uses these for the run; `validate --here` and the runner's planning use them to find a prompt
budget that is too small before a model is built."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.core.errors import InputError
from bench.data import load_interactions
from bench.data.interactions import Interactions
from bench.data.tokenizer import TextTokenizer, train_catalogue_tokenizer
from bench.loop.prompts import LETTERS, TEMPLATE_TEXTS, PromptBuilder, tokenize_titles
from bench.measurement.preflight import checkpoint_folder, declared_architecture
from bench.scenarios.spec import Scenario, Workload

# Our own BPE is trained with at most this many tokens (the model's vocabulary caps it further).
CATALOGUE_VOCAB = 8192
FULL_HISTORY_CAP = 200  # full histories (not just the prompt's recent items) decide which items count as seen


@dataclass(kw_only=True)
class PointInputs:
    interactions: Interactions
    tokenizer: TextTokenizer  # ours (random weights) or the checkpoint's transformers tokenizer
    title_tokens: list[list[int]]
    seconds: dict[str, float]  # load_data, train_tokenizer (or load_tokenizer), tokenize_titles


def load_inputs(scenario: Scenario) -> PointInputs:
    seconds: dict[str, float] = {}
    interactions = _timed(seconds, "load_data", lambda: _load_data(scenario))
    if scenario.model.has_real_weights:
        tokenizer = _timed(seconds, "load_tokenizer", lambda: _checkpoint_tokenizer(scenario))
    else:
        vocab = min(CATALOGUE_VOCAB, declared_architecture(scenario).vocab_size)
        tokenizer = _timed(seconds, "train_tokenizer", lambda: _train_tokenizer(interactions, vocab))
    titles = interactions.catalogue.titles
    title_tokens = _timed(seconds, "tokenize_titles", lambda: tokenize_titles(tokenizer, titles))
    return PointInputs(interactions=interactions, tokenizer=tokenizer, title_tokens=title_tokens, seconds=seconds)


def check_prompts_fit(scenario: Scenario, inputs: PointInputs) -> None:
    """Verbalizer and generate prompts list every candidate: the template with the longest candidate titles
    must fit max_prompt_tokens (InputError otherwise)."""
    builder = prompt_builder(scenario, inputs)
    if scenario.scoring.mode in ("verbalizer", "generate"):
        builder.check_candidate_lists_fit(scenario.workload.candidates)


def prompt_builder(scenario: Scenario, inputs: PointInputs) -> PromptBuilder:
    return PromptBuilder(
        inputs.tokenizer,
        inputs.title_tokens,
        max_prompt_tokens=scenario.max_prompt_tokens,
        title_max_tokens=scenario.workload.title_max_tokens,
        history_length=scenario.workload.history_length,
    )


class InputsCache:
    """Inputs shared by the points of a sweep that differ only in what does not change them (batch size,
    scoring mode...), so that checking a 100-point sweep does not build its data 100 times."""

    def __init__(self) -> None:
        self._entries: dict[str, PointInputs] = {}

    def get(self, scenario: Scenario) -> PointInputs:
        key = json.dumps(
            [scenario.workload.model_dump(mode="json"), scenario.seed, scenario.model.model_dump(mode="json")],
            sort_keys=True,
        )
        if key not in self._entries:
            self._entries[key] = load_inputs(scenario)
        return self._entries[key]


def _timed(into: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    begin = time.perf_counter()
    value = work()
    into[name] = time.perf_counter() - begin
    return value


def _load_data(scenario: Scenario) -> Interactions:
    workload = scenario.workload
    try:
        interactions = load_interactions(
            dataset=workload.dataset,
            path=workload.path,
            items_path=workload.items_path,
            n_users=workload.num_users,
            n_items=workload.num_items,
            max_history=max(workload.history_length, FULL_HISTORY_CAP),
            seed=scenario.seed,
        )
    except InputError as exc:  # the readers name the file; the message names the scenario field as well
        message = str(exc)
        named = message if message.startswith("workload.") else f"{_data_field(workload, message)}: {message}"
        raise InputError(named) from None
    unseen_minimum = max(len(u.items) for u in interactions.users) + workload.candidates
    if interactions.catalogue.n_items < unseen_minimum:
        source = workload.path or "the synthetic catalogue (workload.num_items)"
        raise InputError(
            f"workload.candidates: {workload.candidates} unseen candidates cannot be drawn from {source}: "
            f"it has {interactions.catalogue.n_items} items and the longest history already covers "
            f"{unseen_minimum - workload.candidates}"
        )
    return interactions


def _train_tokenizer(interactions: Interactions, vocab_size: int) -> TextTokenizer:
    catalogue = interactions.catalogue
    texts = [*catalogue.titles, *(g for genres in catalogue.genres for g in genres), *TEMPLATE_TEXTS, *LETTERS]
    return train_catalogue_tokenizer(texts, vocab_size=vocab_size)


def _checkpoint_tokenizer(scenario: Scenario) -> TextTokenizer:
    from bench.models.build import load_checkpoint_tokenizer

    folder = checkpoint_folder(scenario)
    assert folder is not None
    return load_checkpoint_tokenizer(folder)


def _data_field(workload: Workload, message: str) -> str:
    """The scenario field whose file a data reader's message is about."""
    if workload.items_path is not None and message.startswith(f"{workload.items_path}:"):
        return "workload.items_path"
    return "workload.path" if workload.path is not None else "workload"
