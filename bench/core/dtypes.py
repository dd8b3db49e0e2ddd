"""The floating-point types recbench runs models in: one table for bytes per element, the hardware catalogue's
key for peak FLOP/s, and torch's name. torch itself is imported only when a torch dtype is asked for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

DtypeName = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class Dtype:
    name: DtypeName  # torch's spelling, also the scenario's
    bytes: int  # per element
    catalogue_key: str  # the tier catalogue's key for this dtype's peak FLOP/s

    def torch(self) -> Any:
        import torch

        return getattr(torch, self.name)


DTYPES: Mapping[str, Dtype] = MappingProxyType(
    {
        "float32": Dtype("float32", 4, "fp32"),
        "bfloat16": Dtype("bfloat16", 2, "bf16"),
        "float16": Dtype("float16", 2, "fp16"),
    }
)
# Peak-FLOP keys the catalogue may list, including precisions recbench does not run models in.
CATALOGUE_KEYS = ("fp32", "tf32", "bf16", "fp16", "fp8")
# Other spellings of those keys (torch's, and the catalogue's own) -> catalogue key.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        **{dtype.name: dtype.catalogue_key for dtype in DTYPES.values()},
        **{key: key for key in CATALOGUE_KEYS},
        "float": "fp32",
        "half": "fp16",
        "float8_e4m3fn": "fp8",
        "float8_e5m2": "fp8",
    }
)


def dtype(name: str) -> Dtype:
    """The table entry for a dtype name ("float32", "torch.bfloat16"); KeyError for anything else."""
    return DTYPES[str(name).removeprefix("torch.")]


# Bytes per element of every catalogue precision, including those recbench only projects to (fp8 engines).
_CATALOGUE_BYTES: Mapping[str, int] = MappingProxyType({"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1})


def dtype_bytes(name: str) -> int:
    """Bytes per element of a dtype in any known spelling ("float32", "bf16", "fp8"); KeyError for others."""
    key = catalogue_key(name)
    if key is None:
        raise KeyError(name)
    return _CATALOGUE_BYTES[key]


def catalogue_key(name: str) -> str | None:
    """The catalogue key ("fp32", "bf16", ...) for a dtype name in any known spelling, or None."""
    return _ALIASES.get(str(name).strip().lower().removeprefix("torch."))


def known_spellings() -> list[str]:
    return list(_ALIASES)
