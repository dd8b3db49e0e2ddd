"""Which machine this is, as recbench keys it: the results folder name, the fingerprint behind it, and the
catalogue tier it matches (None: a measured-only machine, costed from --price-per-hour or a tiers file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bench.hardware.environment import cpu_model, host_cores, machine_slug, this_machine
from bench.hardware.fingerprint import Fingerprint
from bench.hardware.tiers import Tier, tier_for_machine


@dataclass(frozen=True)
class MachineIdentity:
    key: str  # the results and baselines folder name
    fingerprint: Fingerprint
    cpu_tier: Tier | None
    gpu_tiers: tuple[tuple[str, Tier | None], ...]  # (GPU name, its tier) per visible GPU
    host_cores: int  # the host's logical cores; the fingerprint counts those this process may use


def identify_machine(tiers: Mapping[str, Tier]) -> MachineIdentity:
    fingerprint = this_machine()
    cpu = tier_for_machine(device="cpu", device_name=cpu_model(), fingerprint=fingerprint, tiers=tiers)
    gpus = tuple(
        (name, tier_for_machine(device="cuda", device_name=name, fingerprint=fingerprint, tiers=tiers))
        for name in fingerprint.gpus
    )
    key = machine_slug(fingerprint)
    return MachineIdentity(key=key, fingerprint=fingerprint, cpu_tier=cpu, gpu_tiers=gpus, host_cores=host_cores())
