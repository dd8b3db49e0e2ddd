"""Prompt assembly from pre-tokenized pieces, so per-request work is list concatenation, not tokenization.

Verbalizer prompts follow LlamaRec (arXiv 2311.02089): history titles, then candidates labelled (A), (B), ...,
then a question whose answer is one letter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.core.errors import InputError
from bench.data.tokenizer import TextTokenizer, encode_texts
from bench.scenarios.spec import MAX_VERBALIZER_CANDIDATES

HEADER = "The user interacted with these items, oldest first:\n"
CANDIDATES_HEADER = "Candidate items:\n"
VERBALIZER_QUESTION = "Which candidate will the user choose next? Answer with its letter.\nAnswer: ("
LIKELIHOOD_QUESTION = "The item the user chooses next is: "
LETTERS = [chr(ord("A") + i) for i in range(MAX_VERBALIZER_CANDIDATES)]
TEMPLATE_TEXTS = [HEADER, CANDIDATES_HEADER, VERBALIZER_QUESTION, LIKELIHOOD_QUESTION]


@dataclass
class PaddedBatch:
    input_ids: torch.Tensor  # (B, T), left-padded
    attention_mask: torch.Tensor  # (B, T)
    position_ids: torch.Tensor  # (B, T): positions count real tokens only, so padding does not shift them
    lengths: list[int]  # unpadded lengths


class PromptBuilder:
    def __init__(
        self,
        tokenizer: TextTokenizer,
        title_tokens: list[list[int]],
        *,
        max_prompt_tokens: int,
        title_max_tokens: int,
        history_length: int,
    ) -> None:
        def encode(text: str) -> list[int]:
            return tokenizer.encode(text, add_special_tokens=False)

        self.titles = [tokens[:title_max_tokens] for tokens in title_tokens]
        self.max_prompt_tokens = max_prompt_tokens
        self.header = encode(HEADER)
        self.candidates_header = encode(CANDIDATES_HEADER)
        self.verbalizer_question = encode(VERBALIZER_QUESTION)
        self.likelihood_question = encode(LIKELIHOOD_QUESTION)
        self.newline = encode("\n")
        self.history_labels = [encode(f"{i}. ") for i in range(1, history_length + 1)]
        self.candidate_labels = [encode(f"({letter}) ") for letter in LETTERS]
        self.letter_ids = [_single_token(tokenizer, letter) for letter in LETTERS]

    def verbalizer(self, history: list[int], candidates: list[int]) -> list[int]:
        body = list(self.candidates_header)
        for label, item in zip(self.candidate_labels, candidates, strict=False):
            body += label + self.titles[item] + self.newline
        fixed = len(self.header) + len(body) + len(self.verbalizer_question)
        return self.header + self._history_lines(history, fixed) + body + self.verbalizer_question

    def verbalizer_template_tokens(self, candidates: list[int]) -> int:
        """Tokens of a verbalizer prompt without its history: the template and the candidate list."""
        lines = sum(len(self.candidate_labels[i]) + len(self.titles[item]) + len(self.newline)
                    for i, item in enumerate(candidates))  # fmt: skip
        return len(self.header) + len(self.candidates_header) + lines + len(self.verbalizer_question)

    def check_candidate_lists_fit(self, candidates: int) -> None:
        """InputError unless the template with the `candidates` longest titles of the catalogue fits
        max_prompt_tokens: otherwise some request's candidate list cannot fit, and the run would stop there."""
        longest = sorted(range(len(self.titles)), key=lambda item: -len(self.titles[item]))[:candidates]
        fixed = self.verbalizer_template_tokens(longest)
        if fixed > self.max_prompt_tokens:
            raise InputError(
                f"max_prompt_tokens ({self.max_prompt_tokens}) is too small: the template and the {candidates} "
                f"longest candidate titles take {fixed} tokens; raise max_prompt_tokens or lower "
                "workload.candidates or workload.title_max_tokens"
            )

    def likelihood(self, history: list[int]) -> list[int]:
        fixed = len(self.header) + len(self.likelihood_question)
        return self.header + self._history_lines(history, fixed) + self.likelihood_question

    def history_tokens(self, history: list[int]) -> int:
        """Tokens the history lines of a prompt take (before the budget for the rest of the prompt is known)."""
        return len(self._history_lines(history, fixed=0))

    def continuation(self, item: int) -> list[int]:
        return self.titles[item]

    def _history_lines(self, history: list[int], fixed: int) -> list[int]:
        """The newest history items that fit in the budget left after the fixed parts, oldest first."""
        budget = self.max_prompt_tokens - fixed
        if budget < 0:
            raise InputError(
                f"max_prompt_tokens ({self.max_prompt_tokens}) is too small: the candidate list and template "
                f"alone take {fixed} tokens; raise max_prompt_tokens or lower workload.candidates or "
                "workload.title_max_tokens"
            )
        kept: list[list[int]] = []
        # Numbers are assigned oldest-first after selection, so budget for the longest label.
        label_length = max(len(label) for label in self.history_labels)
        for item in reversed(history):
            line_length = label_length + len(self.titles[item]) + len(self.newline)
            if line_length > budget:
                break
            kept.append(self.titles[item])
            budget -= line_length
        lines: list[int] = []
        for number, title in enumerate(reversed(kept)):
            lines += self.history_labels[number] + title + self.newline
        return lines


def tokenize_titles(tokenizer: TextTokenizer, titles: list[str]) -> list[list[int]]:
    """Each title's tokens (one batched call); an empty title gets the EOS token, so that every candidate has
    something to score."""
    fallback = [tokenizer.eos_token_id or 0]
    return [tokens or fallback for tokens in encode_texts(tokenizer, titles)]


def _single_token(tokenizer: TextTokenizer, text: str) -> int:
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) != 1:
        raise InputError(f"tokenizer: label {text!r} is not a single token ({ids}); verbalizer scoring needs it")
    return ids[0]


def left_pad(sequences: list[list[int]], pad_id: int, device: torch.device) -> PaddedBatch:
    lengths = [len(s) for s in sequences]
    width = max(lengths)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
    return PaddedBatch(ids.to(device), mask.to(device), positions.to(device), lengths)


@dataclass
class PackedRow:
    """Prompts end to end in one row, without padding (batching.padding: packed)."""

    input_ids: torch.Tensor  # (1, sum of lengths)
    position_ids: torch.Tensor  # (1, sum of lengths): each prompt counts from 0
    lengths: list[int]


def pack(sequences: list[list[int]], device: torch.device) -> PackedRow:
    ids = torch.tensor([token for seq in sequences for token in seq], dtype=torch.long)
    positions = torch.cat([torch.arange(len(seq)) for seq in sequences])
    return PackedRow(ids[None].to(device), positions[None].to(device), [len(seq) for seq in sequences])


def right_pad(sequences: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)
