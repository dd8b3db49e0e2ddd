"""A small byte-level BPE tokenizer trained on the catalogue, for models built from scratch.

Random-weight models have no checkpoint tokenizer; training one on the titles gives prompts a
realistic number of tokens per title. Byte-level BPE never needs an unknown token, and its base
alphabet holds every byte, so each single letter or digit (the verbalizer's answer labels) is one
token whatever the merges turn out to be.
"""

from __future__ import annotations

import string

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD_TOKEN = "<pad>"
EOS_TOKEN = "<eos>"
SPECIAL_TOKENS = [PAD_TOKEN, EOS_TOKEN]
# 256 byte symbols plus the special tokens: a smaller vocabulary cannot hold the alphabet.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)
SINGLE_TOKEN_CHARS = string.ascii_uppercase + string.digits


def train_catalogue_tokenizer(texts: list[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE with at most ``vocab_size`` tokens on ``texts``.

    The result has ``<pad>`` and ``<eos>`` special tokens and the interface of a checkpoint's
    tokenizer (``__call__``, ``convert_tokens_to_ids``, ``save_pretrained``...).
    """
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
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD_TOKEN,
        eos_token=EOS_TOKEN,
        clean_up_tokenization_spaces=False,
    )
    _check_single_tokens(tokenizer)
    return tokenizer


def encode_texts(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (one batched call)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def _check_single_tokens(tokenizer: PreTrainedTokenizerFast) -> None:
    """Fail loudly if a label character would take more than one token (it cannot, by design)."""
    ids = encode_texts(tokenizer, list(SINGLE_TOKEN_CHARS))
    bad = [c for c, tokens in zip(SINGLE_TOKEN_CHARS, ids, strict=True) if len(tokens) != 1]
    if bad:
        raise RuntimeError(f"catalogue tokenizer splits label characters {bad!r} into several tokens")
