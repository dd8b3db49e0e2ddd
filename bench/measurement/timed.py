"""Timed batches: warm-up batches (discarded), then batches back to back until the repetition policy is met."""

from __future__ import annotations

import time

from bench.core.interrupts import raise_if_stopped
from bench.hardware.environment import OtherProcessesCpu
from bench.loop.pipeline import BatchRecord, RecommendationLoop
from bench.measurement.prepare import busy_machine_warnings
from bench.measurement.strategy import MeasureContext, Measurement, ProgressCallback
from bench.scenarios.spec import Repetitions
from bench.trackers.energy import EnergyTracker
from bench.trackers.latency import LatencyTracker
from bench.trackers.memory import MemoryTracker


class TimedBatches:
    def measure(self, context: MeasureContext) -> Measurement:
        scenario, prepared = context.point.scenario, context.prepared
        loop, device = prepared.loop, prepared.device
        tdp = context.tier.tdp_watts if context.tier else None
        with MemoryTracker(device) as memory:
            latency = LatencyTracker(device)
            for _ in range(scenario.repetitions.warmup):
                loop.run_batch(loop.next_users(), latency.stage)
            latency.reset()
            # Timed batches too short for CPU-time ticks get no figure rather than a sleep after them (set-up's
            # has one).
            with OtherProcessesCpu(pad=False) as others, EnergyTracker(device, modelled_tdp_watts=tdp) as energy:
                records = _measure(loop, latency, scenario.repetitions, context.progress)
        return Measurement(
            records=records,
            latency=latency.result(),
            latency_window="timed batches (warm-up excluded)",
            memory=memory.result(),
            memory_window="warm-up and timed batches (the model is resident throughout)",
            energy=energy.result(),
            energy_window="timed batches only (warm-up and calibration excluded)",
            warnings=busy_machine_warnings(others, during="the timed batches"),
        )


def _measure(
    loop: RecommendationLoop,
    latency: LatencyTracker,
    policy: Repetitions,
    progress: ProgressCallback | None,
) -> list[BatchRecord]:
    """Timed batches until both min_iterations and min_duration_s are met, capped at max_iterations."""
    records: list[BatchRecord] = []
    began = time.perf_counter()
    while len(records) < policy.max_iterations and (
        len(records) < policy.min_iterations or time.perf_counter() - began < policy.min_duration_s
    ):
        raise_if_stopped()
        records.append(loop.run_batch(loop.next_users(), latency.stage))
        if progress:
            progress(len(records), policy.min_iterations)
    return records
