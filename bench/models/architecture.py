"""A decoder-only transformer's shape: all that hardware cost depends on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from bench.core.errors import InputError


class Architecture(BaseModel):
    """An explicit decoder-only architecture (Llama/Qwen2/Mistral classes in transformers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Literal["llama", "qwen2", "mistral"] = "llama"
    # Bounds far beyond any published model, so a typo cannot ask for a petabyte of weights.
    hidden_size: PositiveInt = Field(le=131_072)
    intermediate_size: PositiveInt = Field(le=1_048_576)
    num_layers: PositiveInt = Field(le=1024)
    num_heads: PositiveInt = Field(le=1024)
    num_kv_heads: PositiveInt = Field(le=1024)
    vocab_size: PositiveInt = Field(le=4_194_304)
    tie_embeddings: bool = False
    max_position_embeddings: PositiveInt = Field(4096, le=16_777_216)

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


SUPPORTED_FAMILIES = ("llama", "qwen2", "mistral")


def architecture_from_config(config: dict[str, Any], *, where: str) -> Architecture:
    """The shape a transformers config.json describes (read as plain JSON, so no transformers import).
    ValueError, naming `where` and the field, for an unsupported model type or a value that cannot be a shape
    (the analytic FLOP and memory formulas describe only these families)."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_FAMILIES:
        raise ValueError(
            f"{where}: model_type {model_type!r} is not supported (supported: {', '.join(SUPPORTED_FAMILIES)})"
        )
    fields = {
        "hidden_size": config.get("hidden_size"),
        "intermediate_size": config.get("intermediate_size"),
        "num_layers": config.get("num_hidden_layers"),
        "num_heads": config.get("num_attention_heads"),
        "num_kv_heads": config.get("num_key_value_heads") or config.get("num_attention_heads"),
        "vocab_size": config.get("vocab_size"),
        "tie_embeddings": bool(config.get("tie_word_embeddings", False)),
        "max_position_embeddings": config.get("max_position_embeddings") or 4096,
    }
    try:
        arch = Architecture(family=model_type, **fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "config"
        raise ValueError(
            f"{where}: {_CONFIG_NAMES.get(field, field)}: {error['msg'].removeprefix('Value error, ')}"
        ) from None
    head_dim = config.get("head_dim")
    if head_dim and head_dim != arch.head_dim:
        raise ValueError(f"{where}: head_dim {head_dim} != hidden_size / num_attention_heads ({arch.head_dim})")
    return arch


# Architecture field -> the config.json key it comes from, for messages.
_CONFIG_NAMES = {
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "num_kv_heads": "num_key_value_heads",
    "tie_embeddings": "tie_word_embeddings",
}


MAX_CONFIG_BYTES = 2**20


def read_checkpoint_architecture(path: Path) -> Architecture:
    """The architecture of a local transformers checkpoint, from its config.json (InputError, one line naming
    the file and the field, for a missing, unreadable or unsupported config)."""
    config_file = Path(path) / "config.json"
    where = f"model.path: {config_file}"
    try:
        if config_file.stat().st_size > MAX_CONFIG_BYTES:
            raise InputError(f"{where}: larger than 1 MiB: not a model config")
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where}: no such file (a transformers checkpoint folder holds config.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: not a readable JSON config ({type(exc).__name__})") from None
    if not isinstance(config, dict):
        raise InputError(f"{where}: not a model config (the top level is not an object)")
    try:
        return architecture_from_config(config, where=where)
    except ValueError as exc:
        raise InputError(str(exc)) from None
