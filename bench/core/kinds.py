"""Small closed vocabularies that results, costs and reports share."""

from __future__ import annotations

from bench.core.stages import NamedEnum


class Basis(NamedEnum):
    """Where a latency or cost figure comes from."""

    MEASURED = "measured"  # timed on the tier it is reported for
    PROJECTED = "projected"  # a roofline estimate from work measured on another tier


# How requests/s is taken from bucketed batches (bench.measurement.derive), as results record it: batches that
# alternate short and long by design make batch_size / p50 the wrong figure.
BUCKETED_THROUGHPUT_BASIS = "batch_size / median over windows of the mean end-to-end batch latency (bucketed batches)"


class EnergyMethod(NamedEnum):
    NVML_ENERGY_COUNTER = "nvml_energy_counter"
    NVML_POWER_SAMPLING = "nvml_power_sampling"
    RAPL = "rapl"
    MODELLED = "modelled"  # TDP x utilisation: an estimate
    UNAVAILABLE = "unavailable"

    @property
    def measured(self) -> bool:
        return self in (EnergyMethod.NVML_ENERGY_COUNTER, EnergyMethod.NVML_POWER_SAMPLING, EnergyMethod.RAPL)


class EnergyKind(NamedEnum):
    """How an energy figure was obtained, as costs and reports show it."""

    MEASURED = "measured"  # an energy counter (NVML, RAPL) on the machine that ran the benchmark
    MODELLED = "modelled"  # TDP x utilisation or TDP x time: an estimate


class LoadVerdict(NamedEnum):
    VALID = "VALID"
    INVALID = "INVALID"


class WarningKind(NamedEnum):
    """What a warning in a result is about, so that readers can act on it (e.g. refuse a busy baseline)."""

    BUSY_MACHINE = "busy_machine"  # other processes used the CPU during set-up or the measured window
    SLOW_DTYPE = "slow_dtype"  # a dtype without native support on this CPU
    SLOW_LEVER = "slow_lever"  # an `optimize` lever that is slow, or costs set-up time, on this CPU
    CHANCE_LEVEL = "chance_level"  # random weights: quality figures are chance by construction
    WEAK_STATISTICS = "weak_statistics"  # too few samples for the percentile that is reported
    OTHER = "other"
