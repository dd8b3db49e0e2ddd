"""Stage 4, LLM scoring: the model estimates P(candidate | user) in one of three modes.

- verbalizer: one forward over a prompt listing the candidates; softmax over the candidate letters' logits
  at the answer position (LlamaRec, arXiv 2311.02089).
- likelihood: the prompt is run once and its KV cache is repeated for every candidate; each candidate's
  title is then scored as a continuation (mean token log-probability), so the prompt is never recomputed.
- generate: the verbalizer prompt is prefilled, then `new_tokens` tokens are decoded greedily with the KV
  cache; time to first token and time per output token are recorded. Scores come from the first token's
  letter distribution, as in verbalizer mode.

With `batching.padding: packed` a batch's prompts run as one packed row without padding (engine: native); steps
after the prompt (candidate titles, decoded tokens) run on a padded batch as before, the prompt's cache laid out
as a left-padded one.

Every scorer reports the shapes of the forwards it ran, so FLOPs and memory can be computed analytically
for exactly the work that was done (bench.models.analytic).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.core.stages import Stage
from bench.loop.prompts import PackedRow, PaddedBatch, PromptBuilder, left_pad, pack, right_pad
from bench.models.analytic import ForwardShape

StageContext = Callable[[str], AbstractContextManager]


@dataclass
class PromptBatch:
    """A batch's prompts as the model takes them: left-padded, where the prompt's forward runs padded or later
    steps extend its mask and positions; and with batching.padding: packed, end to end in one row."""

    lengths: list[int]
    padded: PaddedBatch | None
    packed: PackedRow | None

    def padded_batch(self) -> PaddedBatch:
        """The left-padded batch: what a padded prompt forward runs, and whose mask and positions the steps after
        the prompt extend."""
        if self.padded is None:
            raise ValueError("this prompt batch was built without a padded batch for later steps")
        return self.padded


@dataclass
class ScoreOutput:
    scores: torch.Tensor  # (B, K): higher is more likely
    forwards: list[ForwardShape]
    prompt_tokens: list[int]  # unpadded prompt length of each request
    useful_forwards: list[ForwardShape] = field(default_factory=list)  # the same work per request, unpadded
    generated_tokens: int = 0  # tokens decoded (generate mode)
    extra: dict[str, float] = field(default_factory=dict)


class Scorer:
    def __init__(
        self,
        model: torch.nn.Module,
        prompts: PromptBuilder,
        *,
        pad_id: int,
        device: torch.device,
        packed: bool = False,
    ) -> None:
        self.model = model
        self.prompts = prompts
        self.pad_id = pad_id
        self.device = device
        self.packed = packed
        # transformers 5.x renamed the forward's `past_key_values` argument to `cache`; accept both.
        forward_args = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in forward_args else "past_key_values"

    def score(self, history: list[list[int]], candidates: torch.Tensor, stage: StageContext) -> ScoreOutput:
        raise NotImplementedError

    def _prompt_batch(self, prompts: list[list[int]], *, later_steps: bool) -> PromptBatch:
        """Host work before the LLM: the prompts as tensors on the device, padded where the prompt's forward or
        `later_steps` (titles, decoded tokens) need that."""
        packed = pack(prompts, self.device) if self.packed else None
        padded = left_pad(prompts, self.pad_id, self.device) if packed is None or later_steps else None
        return PromptBatch([len(prompt) for prompt in prompts], padded, packed)

    def _prompt_forward(self, prompts: PromptBatch, *, use_cache: bool) -> tuple[Any, ForwardShape]:
        """The prompts' forward, padded to the longest or packed into one row, and the shape of the work it ran;
        logits of each request's last position only, (B, 1, vocab): the LM head skips the others."""
        if prompts.packed is None:
            batch = prompts.padded_batch()
            width = batch.input_ids.shape[1]
            output = self.model(
                input_ids=batch.input_ids,
                attention_mask=batch.attention_mask,
                position_ids=batch.position_ids,
                logits_to_keep=1,
                use_cache=use_cache,
            )
            return output, ForwardShape(batch=len(batch.lengths), new_tokens=width, context=width, logits=1,
                                        keeps_cache=use_cache)  # fmt: skip
        row = prompts.packed
        output = self.model(input_ids=row.input_ids, position_ids=row.position_ids, sequence_lengths=row.lengths,
                            logits_to_keep=1, use_cache=use_cache)  # fmt: skip
        if use_cache:  # later steps run on a padded batch
            self._cache_of(output).unpack_to_left_padded(row.lengths)
        total = row.input_ids.shape[1]
        return output, ForwardShape(batch=1, new_tokens=total, context=total, logits=1, keeps_cache=use_cache,
                                    segments=tuple(row.lengths))  # fmt: skip

    def _cache_of(self, output: Any) -> Any:
        """The KV cache an output carries, under the name this transformers version uses."""
        return getattr(output, self.cache_arg)

    def _letter_scores(self, last_logits: torch.Tensor, k: int) -> torch.Tensor:
        letters = last_logits[:, self.prompts.letter_ids[:k]].float()
        return torch.log_softmax(letters, dim=-1)


class VerbalizerScorer(Scorer):
    def score(self, history: list[list[int]], candidates: torch.Tensor, stage: StageContext) -> ScoreOutput:
        candidate_lists = candidates.tolist()
        prompts = [self.prompts.verbalizer(h, c) for h, c in zip(history, candidate_lists, strict=True)]
        inputs = self._prompt_batch(prompts, later_steps=False)
        with stage(Stage.LLM_FORWARD):
            output, shape = self._prompt_forward(inputs, use_cache=False)
            logits = output.logits[:, -1, :]  # only the answer position is needed
        return ScoreOutput(
            scores=self._letter_scores(logits, candidates.shape[1]),
            forwards=[shape],
            prompt_tokens=inputs.lengths,
            useful_forwards=[
                ForwardShape(batch=1, new_tokens=n, context=n, logits=1, keeps_cache=False) for n in inputs.lengths
            ],
        )


class LikelihoodScorer(Scorer):
    def score(self, history: list[list[int]], candidates: torch.Tensor, stage: StageContext) -> ScoreOutput:
        n_requests, k = candidates.shape
        inputs = self._prompt_batch([self.prompts.likelihood(h) for h in history], later_steps=True)
        continuations = [self.prompts.continuation(item) for item in candidates.flatten().tolist()]
        cont_ids, cont_mask = right_pad(continuations, self.pad_id, self.device)
        with stage(Stage.LLM_PREFILL):  # the last prompt position predicts each title's first token
            prefill, prefill_shape = self._prompt_forward(inputs, use_cache=True)
        batch = inputs.padded_batch()
        prompt_width, cont_width = batch.input_ids.shape[1], cont_ids.shape[1]
        with stage(Stage.LLM_CANDIDATES):
            cache = self._cache_of(prefill)
            cache.batch_repeat_interleave(k)  # share the prompt's KV cache with each of its K candidates
            full_mask = torch.cat([batch.attention_mask.repeat_interleave(k, dim=0), cont_mask], dim=1)
            start = batch.position_ids[:, -1:].repeat_interleave(k, dim=0) + 1
            positions = start + torch.arange(cont_width, device=self.device)
            logits = self.model(
                input_ids=cont_ids,
                attention_mask=full_mask,
                position_ids=positions,
                **{self.cache_arg: cache},
                use_cache=True,
            ).logits
            # Reading the log-probabilities out of (B*K, T, vocab) logits is the model's work, done where the logits
            # are (on the GPU, on a GPU): timed with the forward, not as host work a projection would carry over.
            first = prefill.logits[:, -1, :].repeat_interleave(k, dim=0).unsqueeze(1)
            # Token j of a title is predicted by the position before it: the prompt's last one for j = 0.
            predicting = torch.cat([first, logits[:, :-1, :]], dim=1).float()
            del logits
            # log p(token) = logit - logsumexp(logits): no second (B*K, T, vocab) tensor as log_softmax would make.
            chosen = predicting.gather(2, cont_ids.unsqueeze(2)).squeeze(2)
            token_logp = chosen - torch.logsumexp(predicting, dim=-1)
        mean_logp = (token_logp * cont_mask).sum(dim=1) / cont_mask.sum(dim=1).clamp_min(1)
        forwards = [
            prefill_shape,
            ForwardShape(
                batch=n_requests * k,
                new_tokens=cont_width,
                context=prompt_width + cont_width,
                logits=cont_width,
            ),
        ]
        title_lengths = [len(c) for c in continuations]
        useful = [ForwardShape(batch=1, new_tokens=n, context=n, logits=1) for n in batch.lengths] + [
            ForwardShape(batch=1, new_tokens=t, context=batch.lengths[i // k] + t, logits=t)
            for i, t in enumerate(title_lengths)
        ]
        return ScoreOutput(
            scores=mean_logp.view(n_requests, k),
            forwards=forwards,
            prompt_tokens=batch.lengths,
            useful_forwards=useful,
            extra={"continuation_tokens": float(cont_width)},
        )


class GenerateScorer(Scorer):
    def __init__(self, *args: object, new_tokens: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.new_tokens = new_tokens

    def score(self, history: list[list[int]], candidates: torch.Tensor, stage: StageContext) -> ScoreOutput:
        candidate_lists = candidates.tolist()
        prompts = [self.prompts.verbalizer(h, c) for h, c in zip(history, candidate_lists, strict=True)]
        inputs = self._prompt_batch(prompts, later_steps=True)
        batch = inputs.padded_batch()
        n_requests, width = batch.input_ids.shape
        with stage(Stage.LLM_PREFILL):  # time to first token
            out, prefill_shape = self._prompt_forward(inputs, use_cache=True)
            next_token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        scores = self._letter_scores(out.logits[:, -1, :], candidates.shape[1])
        cache, mask, position = self._cache_of(out), batch.attention_mask, batch.position_ids[:, -1:]
        forwards = [prefill_shape]
        for step in range(1, self.new_tokens):
            with stage(Stage.LLM_DECODE_TOKEN):  # time per output token
                mask = torch.cat([mask, mask.new_ones(n_requests, 1)], dim=1)
                position = position + 1
                out = self.model(
                    input_ids=next_token,
                    attention_mask=mask,
                    position_ids=position,
                    **{self.cache_arg: cache},
                    use_cache=True,
                )
                next_token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            forwards.append(ForwardShape(batch=n_requests, new_tokens=1, context=width + step, logits=1))
        useful = [ForwardShape(batch=1, new_tokens=n, context=n, logits=1) for n in batch.lengths] + [
            ForwardShape(batch=1, new_tokens=1, context=n + step, logits=1)
            for n in batch.lengths
            for step in range(1, self.new_tokens)
        ]
        return ScoreOutput(
            scores=scores,
            forwards=forwards,
            prompt_tokens=batch.lengths,
            useful_forwards=useful,
            generated_tokens=n_requests * self.new_tokens,
        )


def make_scorer(
    mode: str,
    model: torch.nn.Module,
    prompts: PromptBuilder,
    *,
    pad_id: int,
    device: torch.device,
    new_tokens: int,
    packed: bool = False,
) -> Scorer:
    if mode == "verbalizer":
        return VerbalizerScorer(model, prompts, pad_id=pad_id, device=device, packed=packed)
    if mode == "likelihood":
        return LikelihoodScorer(model, prompts, pad_id=pad_id, device=device, packed=packed)
    return GenerateScorer(model, prompts, pad_id=pad_id, device=device, new_tokens=new_tokens, packed=packed)
