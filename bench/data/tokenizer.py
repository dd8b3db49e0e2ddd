"""A small byte-level BPE tokenizer trained on the catalogue, for models built from scratch.

Random-weight models have no checkpoint tokenizer; training one on the titles gives prompts a
realistic number of tokens per title. Byte-level BPE never needs an unknown token, and its base
alphabet holds every byte, so each single letter or digit (the verbalizer's answer labels) is one
token whatever the merges turn out to be.

The trained tokenizer is wrapped in CatalogueTokenizer, which offers the part of a transformers tokenizer's
interface the loop uses, so that a run on random weights need not import transformers (bench.models.native).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN]
# 256 byte symbols plus the special tokens: a smaller vocabulary cannot hold the alphabet.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
SINGLE_TOKEN_CHARS = string.ascii_uppercase + string.digits


class TextTokenizer(Protocol):
    """What the loop asks of a tokenizer: a CatalogueTokenizer, or a checkpoint's transformers tokenizer."""

    pad_token_id: int | None
    eos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def __call__(self, texts: list[str], add_special_tokens: bool = ...) -> Any: ...


class CatalogueTokenizer:
    """A trained `tokenizers.Tokenizer` behind the calls the loop makes of a checkpoint's transformers tokenizer
    (`encode`, `__call__`, the special token ids, `save_pretrained`), with the same ids."""

    pad_token = PAD_TOKEN
    eos_token = EOS_TOKEN

    def __init__(self, core: Tokenizer) -> None:
        self.core = core
        self.pad_token_id = core.token_to_id(PAD_TOKEN)
        self.eos_token_id = core.token_to_id(EOS_TOKEN)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.core.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list[list[int]]]:
        encodings = self.core.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [encoding.ids for encoding in encodings]}

    def decode(self, ids: list[int]) -> str:
        return self.core.decode(ids, skip_special_tokens=False)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.core.token_to_id(token)

    def get_vocab(self) -> dict[str, int]:
        return self.core.get_vocab(with_added_tokens=True)

    def __len__(self) -> int:
        return self.core.get_vocab_size(with_added_tokens=True)

    def save_pretrained(self, folder: Path | str) -> Any:
        """Saved as a transformers fast tokenizer, so a checkpoint folder made from it loads with AutoTokenizer."""
        from transformers import PreTrainedTokenizerFast

        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=self.core, pad_token=PAD_TOKEN, eos_token=EOS_TOKEN, clean_up_tokenization_spaces=False
        )
        return wrapped.save_pretrained(folder)


def train_catalogue_tokenizer(texts: list[str], *, vocab_size: int) -> CatalogueTokenizer:
    """Train a byte-level BPE with at most ``vocab_size`` tokens on ``texts``, with ``<pad>`` and ``<eos>``
    special tokens."""
    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be >= {MIN_VOCAB_SIZE} (bytes + special tokens), got {vocab_size}")
    core = Tokenizer(models.BPE())
    # No prefix space: a bare "A" must stay the single byte token "A", not "ĠA".
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,  # a merge seen once only memorises one title
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tokenizer = CatalogueTokenizer(core)
    _check_single_tokens(tokenizer)
    return tokenizer


def encode_texts(tokenizer: TextTokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (one batched call), from a CatalogueTokenizer or a
    transformers tokenizer."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _check_single_tokens(tokenizer: CatalogueTokenizer) -> None:
    """Fail loudly if a label character would take more than one token (it cannot, by design)."""
    ids = encode_texts(tokenizer, list(SINGLE_TOKEN_CHARS))
    bad = [c for c, tokens in zip(SINGLE_TOKEN_CHARS, ids, strict=True) if len(tokens) != 1]
    if bad:
        raise RuntimeError(f"catalogue tokenizer splits label characters {bad!r} into several tokens")
