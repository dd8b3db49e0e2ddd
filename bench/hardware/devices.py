"""Vendor peak FLOPS and memory figures for the GPU that ran a benchmark, read from the tier catalogue.

Figures live in bench/hardware/tiers.yaml (with their sources and dates); this module only adapts a
catalogue lookup to the shape the MFU code wants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.core.dtypes import catalogue_key
from bench.hardware.tiers import load_tiers, match_tier


@dataclass(frozen=True, kw_only=True)
class DevicePeak:
    """The vendor's dense peak for one device and dtype, in SI units."""

    device: str  # tier name, e.g. "h100-sxm"
    dtype: str  # catalogue dtype key, e.g. "bf16"
    flops_per_s: float
    memory_bytes: float  # marketed capacity × 1e9
    bandwidth_bytes_per_s: float
    source: str
    date: str
    verified: bool  # False where the catalogue lists the figure as unverified


def lookup_device_peak(device_name: str, dtype: str, path: Path | str | None = None) -> DevicePeak | None:
    """Vendor dense peak for `device_name` (as torch.cuda.get_device_name() spells it) and `dtype`.

    `path` names a user tiers file layered over the bundled catalogue (see bench.hardware.tiers).
    None when no GPU tier matches or it has no figure for that dtype (e.g. bf16 on a T4).
    """
    tier = match_tier(device_name, load_tiers([path] if path is not None else ()))
    key = catalogue_key(str(dtype))
    if tier is None or key is None or key not in tier.peak_flops:
        return None
    return DevicePeak(
        device=tier.name,
        dtype=key,
        flops_per_s=tier.peak_flops[key],
        memory_bytes=tier.memory_bytes,
        bandwidth_bytes_per_s=tier.bandwidth_bytes_per_s,
        source=tier.source,
        date=tier.date,
        verified=tier.verified(f"tflops.{key}"),
    )
