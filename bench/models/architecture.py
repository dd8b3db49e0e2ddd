"""A decoder-only transformer's shape: all that hardware cost depends on."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, model_validator


class Architecture(BaseModel):
    """An explicit decoder-only architecture (Llama/Qwen2/Mistral classes in transformers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["llama", "qwen2", "mistral"] = "llama"
    hidden_size: PositiveInt
    intermediate_size: PositiveInt
    num_layers: PositiveInt
    num_heads: PositiveInt
    num_kv_heads: PositiveInt
    vocab_size: PositiveInt
    tie_embeddings: bool = False
    max_position_embeddings: PositiveInt = 4096

    @model_validator(mode="after")
    def _heads_divide(self) -> Architecture:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads
