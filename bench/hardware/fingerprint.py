"""What makes two machines the same for timing purposes: CPU model and ISA level (AVX2, AVX-512, AVX-512 BF16,
AMX; Arm SVE or NEON), logical cores, memory, GPUs, and the torch build. A GEMM peak, a baseline or a catalogue
tier belongs to one fingerprint; the same vendor string on another ISA is another machine (an AVX2 and an
AVX-512 EPYC differ 1.6x in fp32 GEMM and ~1000x in bf16)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

# ISA levels, most capable first: the first whose flags are all present names the machine.
ISA_LEVELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("amx", ("amx_bf16",)),
    ("avx512-bf16", ("avx512_bf16",)),
    ("avx512", ("avx512f",)),
    ("avx2", ("avx2",)),
    ("sve", ("sve",)),
    ("neon", ("asimd",)),
)
BASELINE_ISA = "baseline"
# Marketing noise in CPU model strings that only lengthens folder names.
_CPU_NOISE = re.compile(r"\((?:r|tm)\)|\bcpu\b|\bprocessor\b|@.*$|\b\d+-core\b", re.IGNORECASE)
_SLUG_MAX_LEN = 96


def isa_level(flags: Mapping[str, bool]) -> str:
    return next((level for level, needed in ISA_LEVELS if all(flags.get(f) for f in needed)), BASELINE_ISA)


@dataclass(frozen=True)
class Fingerprint:
    cpu_model: str
    isa: str  # one of ISA_LEVELS' names, or "baseline"
    logical_cores: int  # those the process may use (bench.hardware.environment.usable_cores)
    memory_gib: int  # total RAM, rounded to whole GiB
    gpus: tuple[str, ...]  # every GPU's name, in index order
    torch: str  # torch's version string, build included (e.g. 2.13.0+cpu)

    @property
    def hardware(self) -> dict[str, object]:
        """Everything but the software: what must match before two timings compare."""
        return {k: v for k, v in asdict(self).items() if k != "torch"}

    @property
    def digest(self) -> str:
        """8 hex digits of the hardware part: the same machine (whatever torch it runs) keeps its key."""
        canonical = json.dumps(self.hardware, sort_keys=True, default=list)
        return hashlib.sha256(canonical.encode()).hexdigest()[:8]

    def describe(self) -> str:
        gpus = ", ".join(f"{n}x {name}" for name, n in Counter(self.gpus).items())
        return (
            f"{self.cpu_model}, {self.isa.upper()}, {self.logical_cores} logical core"
            + ("s" if self.logical_cores != 1 else "")
            + f", {self.memory_gib} GiB"
            + (f", {gpus}" if gpus else "")
            + f", torch {self.torch}"
        )

    def differences(self, other: Fingerprint) -> list[str]:
        """Field by field, what differs between two fingerprints (torch included)."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{key} {mine[key]} vs {theirs[key]}" for key in mine if mine[key] != theirs[key]]


def fingerprint_of(
    *,
    cpu_model: str,
    flags: Mapping[str, bool],
    logical_cores: int | None,
    ram_bytes: int,
    gpu_names: Sequence[str],
    torch_version: str,
) -> Fingerprint:
    return Fingerprint(
        cpu_model=cpu_model,
        isa=isa_level(flags),
        logical_cores=logical_cores or 0,
        memory_gib=round(ram_bytes / 2**30),
        gpus=tuple(gpu_names),
        torch=torch_version,
    )


def machine_key(fingerprint: Fingerprint) -> str:
    """A results folder name: readable CPU, cores, ISA and GPUs, then the digest that makes it exact,
    e.g. amd-epyc-2c-avx2-3f9a1c2e or intel-xeon-platinum-8481c-8c-amx-1xnvidia-h100-80gb-hbm3-0b1d2c3e."""
    parts = [_CPU_NOISE.sub(" ", fingerprint.cpu_model), f"{fingerprint.logical_cores}c", fingerprint.isa]
    parts += [f"{count}x{name}" for name, count in Counter(fingerprint.gpus).items()]
    readable = slugify(" ".join(parts))[: _SLUG_MAX_LEN - 9].rstrip("-") or "machine"
    return f"{readable}-{fingerprint.digest}"


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:_SLUG_MAX_LEN].rstrip("-")
