"""Serving engines (engines.yaml): the per-launch overheads a projection onto a GPU adds to the roofline."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.core.errors import InputError
from bench.core.yaml_files import read_yaml

ENGINES_PATH = Path(__file__).with_name("engines.yaml")
DEFAULT_ENGINE = "torch-eager"  # how recbench itself runs a model


class Engine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    launch_overhead_us: float = Field(ge=0)
    graph_overhead_us: float = Field(ge=0)
    ops_per_layer: float = Field(gt=0)
    source: str
    date: str
    unverified: list[str] = Field(default_factory=list)

    def floor_s(self, *, forwards: int, ops_per_forward: float) -> float:
        """The least time `forwards` forwards of `ops_per_forward` operators take, whatever the hardware."""
        return forwards * (ops_per_forward * self.launch_overhead_us + self.graph_overhead_us) * 1e-6


@functools.cache
def load_engines() -> dict[str, Engine]:
    data = read_yaml(ENGINES_PATH)
    try:
        return {name: Engine.model_validate(fields) for name, fields in data["engines"].items()}
    except (ValidationError, KeyError, TypeError) as exc:
        raise InputError(f"{ENGINES_PATH}: not a valid engines file ({type(exc).__name__})") from None
