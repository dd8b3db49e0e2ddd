"""The catalogue tokenizer trained for random-weight models."""

from __future__ import annotations

import string
import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from bench.data.synthetic import generate_synthetic
from bench.data.tokenizer import EOS_TOKEN, PAD_TOKEN, CatalogueTokenizer, encode_texts, train_catalogue_tokenizer

PROMPT_WORDS = ["User", "history", "Candidates", "Answer", "with", "the", "letter"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    catalogue = generate_synthetic(n_users=5, n_items=5000, max_history=5, seed=0).catalogue
    genres = sorted({g for item in catalogue.genres for g in item})
    return catalogue.titles + genres + PROMPT_WORDS


@pytest.fixture(scope="module")
def tokenizer(texts: list[str]) -> CatalogueTokenizer:
    return train_catalogue_tokenizer(texts, vocab_size=1000)


def test_labels_are_single_tokens(tokenizer: CatalogueTokenizer) -> None:
    labels = list(string.ascii_uppercase + string.digits)
    for label in labels:
        assert len(tokenizer.encode(label, add_special_tokens=False)) == 1, label
    ids = [tokenizer.convert_tokens_to_ids(label) for label in labels]
    assert len(set(ids)) == len(labels)
    assert encode_texts(tokenizer, labels) == [[i] for i in ids]


def test_special_tokens(tokenizer: CatalogueTokenizer) -> None:
    assert tokenizer.pad_token == PAD_TOKEN and tokenizer.eos_token == EOS_TOKEN
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    # Special tokens are atomic and never produced from ordinary text.
    assert tokenizer.encode(EOS_TOKEN, add_special_tokens=False) == [tokenizer.eos_token_id]
    assert tokenizer.eos_token_id not in tokenizer.encode("pad eos <", add_special_tokens=False)


def test_vocab_size_respected(texts: list[str], tokenizer: CatalogueTokenizer) -> None:
    assert 258 < len(tokenizer) <= 1000
    small = train_catalogue_tokenizer(texts, vocab_size=300)
    assert len(small) <= 300
    # Fewer merges, longer encodings.
    sample = texts[:200]
    assert sum(map(len, encode_texts(small, sample))) > sum(map(len, encode_texts(tokenizer, sample)))
    with pytest.raises(ValueError, match="vocab_size"):
        train_catalogue_tokenizer(texts, vocab_size=100)


def test_titles_encode_compactly_and_round_trip(texts: list[str], tokenizer: CatalogueTokenizer) -> None:
    ids = encode_texts(tokenizer, texts[:500])
    assert all(ids)
    assert tokenizer.decode(ids[0]) == texts[0]
    # Learned merges: far fewer tokens than bytes.
    assert sum(map(len, ids)) < 0.5 * sum(len(t.encode()) for t in texts[:500])
    assert encode_texts(tokenizer, []) == []


def test_save_and_reload(tmp_path: Path, texts: list[str], tokenizer: CatalogueTokenizer) -> None:
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    sample = [*texts[:100], "Answer: B", "Totally unseen wørds 123"]
    assert encode_texts(loaded, sample) == encode_texts(tokenizer, sample)
    assert loaded.pad_token_id == tokenizer.pad_token_id
    assert loaded.eos_token_id == tokenizer.eos_token_id
    assert len(loaded) == len(tokenizer)


def test_training_is_deterministic(texts: list[str]) -> None:
    first = train_catalogue_tokenizer(texts, vocab_size=2000)
    second = train_catalogue_tokenizer(texts, vocab_size=2000)
    assert first.get_vocab() == second.get_vocab()


@pytest.mark.benchmark_run  # a speed bar: not in the default suite, which must pass on a busy machine
def test_training_on_a_catalogue_takes_under_2_s(texts: list[str]) -> None:
    start = time.perf_counter()
    train_catalogue_tokenizer(texts, vocab_size=2000)
    assert time.perf_counter() - start < 2.0
