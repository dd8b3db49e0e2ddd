"""Projections set beside GPU measurements (`recbench projection-check`, run by `make gpu-check`).

For every result measured on a CUDA GPU the catalogue knows:
- from the CPU: where a CPU result of the same scenario and sweep point (device aside) exists, the projection
  `report` would make from it onto the GPU's tier, uncalibrated (catalogue efficiencies and launch overhead),
  which is what a user without a GPU is shown;
- from itself: the GPU result's own work projected onto its tier, uncalibrated, which isolates the roofline and
  launch model from the host-side figures (those come from the same run).
Each is compared stage by stage (host stages, scoring's host part, the LLM's forwards) and for the batch, by
medians.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.device import Device
from bench.cost.projection import HOST_STAGES, OperatingPoint, default_efficiency, project
from bench.hardware.tiers import Tier, tier_for_machine

SCORING_HOST = "scoring: prompts and scores (host)"
SCORING_LLM = "scoring: LLM forwards"
BATCH = "batch (p50)"


@dataclass(frozen=True)
class StageCheck:
    stage: str
    source_s: float  # measured where the projection was made from
    measured_s: float  # measured on the GPU
    projected_s: float | None

    @property
    def error(self) -> float | None:
        if self.projected_s is None or self.measured_s <= 0:
            return None
        return self.projected_s / self.measured_s - 1


@dataclass(frozen=True)
class ProjectionCheck:
    measured: OperatingPoint  # the GPU result
    source: OperatingPoint  # the result projected from: a CPU result, or the GPU result itself
    tier: str
    llm_bound: str | None
    stages: list[StageCheck]

    @property
    def kind(self) -> str:
        return "from the CPU" if self.source is not self.measured else "from itself"


def _device_free(point: OperatingPoint) -> tuple[str, tuple[tuple[str, str], ...]]:
    return point.scenario, tuple(sorted((k, v) for k, v in point.sweep_values.items() if k != "device"))


def projection_checks(points: list[OperatingPoint], tiers: dict[str, Tier]) -> list[ProjectionCheck]:
    """One or two checks per GPU result (see the module doc), in the order the results are given."""
    # Several CPU results of one point: the newest is the partner (as `report` uses the newest run of a point).
    cpu_points = sorted((p for p in points if not Device.parse(p.device).is_cuda), key=lambda p: (p.created_at, p.path))
    cpu = {_device_free(p): p for p in cpu_points}
    checks = []
    for gpu in points:
        if not Device.parse(gpu.device).is_cuda:
            continue
        tier = tier_for_machine(device=gpu.device, device_name=gpu.device_name, fingerprint=gpu.fingerprint,
                                tiers=tiers)  # fmt: skip
        if tier is None:
            continue
        partner = cpu.get(_device_free(gpu))
        for source in ([partner] if partner else []) + [gpu]:
            checks.append(_check(gpu, source, tier))
    return checks


def _check(gpu: OperatingPoint, source: OperatingPoint, tier: Tier) -> ProjectionCheck:
    timing = project(source, tier, default_efficiency(tier))
    stages = [
        StageCheck(str(stage), source.host_stages_s.get(stage, 0.0), gpu.host_stages_s.get(stage, 0.0),
                   source.host_stages_s.get(stage, 0.0) if timing.batch_p50_s is not None else None)
        for stage in HOST_STAGES
    ]  # fmt: skip
    stages.append(StageCheck(SCORING_HOST, source.llm.host_s, gpu.llm.host_s,
                             source.llm.host_s if timing.batch_p50_s is not None else None))  # fmt: skip
    stages.append(StageCheck(SCORING_LLM, source.llm.measured_s, gpu.llm.measured_s, timing.llm_s))
    stages.append(StageCheck(BATCH, source.batch_p50_s, gpu.batch_p50_s, timing.batch_p50_s))
    return ProjectionCheck(measured=gpu, source=source, tier=tier.name, llm_bound=timing.llm_bound, stages=stages)
