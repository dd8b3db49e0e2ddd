"""A scenario's `device` value (cpu, cuda, cuda:N), parsed once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DEVICE_PATTERN = re.compile(r"^(cpu|cuda)(?::(\d{1,3}))?$")


@dataclass(frozen=True)
class Device:
    kind: Literal["cpu", "cuda"]
    index: int | None = None  # cuda:N; None for plain `cuda` (device 0) and for the CPU

    @classmethod
    def parse(cls, text: str) -> Device:
        """ValueError (with the accepted forms) for anything but cpu, cuda or cuda:N."""
        match = DEVICE_PATTERN.match(str(text))
        if not match or (match.group(1) == "cpu" and match.group(2) is not None):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {text!r}")
        index = int(match.group(2)) if match.group(2) is not None else None
        return cls("cuda" if match.group(1) == "cuda" else "cpu", index)

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def cuda_index(self) -> int:
        """The CUDA ordinal (0 for plain `cuda`); only meaningful for a CUDA device."""
        return self.index or 0

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"
