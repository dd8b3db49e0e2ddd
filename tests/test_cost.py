"""Cost formula, roofline projection, memory fit and capacity plan on hand-computed cases."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from bench.core.kinds import EnergyMethod
from bench.cost.capacity import PlanSettings, plan_capacity
from bench.cost.model import cost_on_tier, cost_table, hourly_cost
from bench.cost.projection import Efficiency, OperatingPoint, StageWork, calibrate, measured, project
from bench.hardware.tiers import HOURS_PER_YEAR, OwnedCost, load_tiers
from bench.models.analytic import weights_bytes
from bench.models.presets import get_preset
from bench.results.model import MemoryEstimate

TIERS = load_tiers()


def point(**overrides: object) -> OperatingPoint:
    base = dict(
        path="r.json", scenario="s", point="default", spec_hash="h", model="m", params=1, batch_size=4,
        max_prompt_tokens=512, prompt_tokens_mean=400.0, top_n=10, dtype="float32", device="cpu",
        device_name="AMD EPYC", logical_cores=2,
        stages={
            "preprocess": StageWork(flops=0, bytes_moved=0, measured_s=0.001),
            "scoring": StageWork(flops=2e12, bytes_moved=4e9, measured_s=9.0),
        },
        batch_p50_s=10.0, batch_p99_s=12.0,
        memory_need=MemoryEstimate(weights_bytes=4_000_000_000, kv_cache_bytes=0, activations_bytes=0,
                                   total_bytes=4_000_000_000),
        energy_j_per_batch=None, energy_method=EnergyMethod.MODELLED, hardware_tier=None,
        workload="default", machine="m", created_at="2026-11-27T00:00:00+00:00", commit=None,
    )  # fmt: skip
    base.update(overrides)
    return OperatingPoint(**base)  # type: ignore[arg-type]


def test_measured_cost_is_price_over_recommendations_per_hour():
    tier = replace(TIERS["a10g"], price_per_hour=1.0, devices_per_instance=1, owned=None)
    row = cost_on_tier(point(), measured(point(), tier), tier)
    # 4 requests / 10 s = 0.4 req/s = 4 recommendations/s = 14,400 per hour; $1/h -> $69.44 per 1M.
    assert row.recommendations_per_s == pytest.approx(4.0)
    assert row.cost_per_1m_recommendations_usd == pytest.approx(1e6 / 14_400)


def test_owned_hardware_adds_energy_at_the_pue():
    owned = OwnedCost(
        purchase_price_usd=HOURS_PER_YEAR, lifetime_years=1.0, power_cost_per_kwh=0.10, pue=1.5, source="t", date="d"
    )
    tier = replace(TIERS["rtx-4090"], owned=owned, devices_per_instance=1)
    # $1/h amortised + 0.5 kW x 1.5 x $0.10 = $1.075/h
    assert hourly_cost(tier, average_watts=500.0) == pytest.approx(1.075)


def test_projection_is_the_roofline_time_per_stage():
    tier = replace(TIERS["h100-sxm"], peak_flops={"bf16": 1e15}, bandwidth_bytes_per_s=2e12, memory_bytes=80e9)
    efficiency = Efficiency(compute=0.5, memory=0.5, source="test")
    timing = project(point(), tier, efficiency)
    # bf16 halves the bytes: compute 2e12 / (1e15 * 0.5) = 4 ms; memory 2e9 / (2e12 * 0.5) = 2 ms -> 4 ms,
    # plus 1 ms of host preprocessing carried over.
    assert timing.dtype == "bfloat16"
    assert timing.batch_p50_s == pytest.approx(0.004 + 0.001)
    assert timing.llm_bound == "compute"
    assert timing.batch_p99_s == pytest.approx(0.005 * 1.2)


def test_memory_bound_projection():
    tier = replace(TIERS["h100-sxm"], peak_flops={"bf16": 1e15}, bandwidth_bytes_per_s=1e11, memory_bytes=80e9)
    timing = project(point(), tier, Efficiency(1.0, 1.0, "test"))
    assert timing.llm_bound == "memory"
    assert timing.batch_p50_s == pytest.approx(2e9 / 1e11 + 0.001)


def test_a_70b_fp16_model_does_not_fit_a_24_gb_tier():
    need = weights_bytes(get_preset("llama-3.1-70b"), dtype="bfloat16")
    estimate = MemoryEstimate(weights_bytes=need, kv_cache_bytes=0, activations_bytes=0, total_bytes=need)
    big = point(dtype="bfloat16", memory_need=estimate)
    timing = project(big, TIERS["l4"], Efficiency(0.7, 0.7, "test"))
    assert not timing.fits and timing.batch_p50_s is None
    row = cost_on_tier(big, timing, TIERS["l4"])
    assert row.cost_per_1m_recommendations_usd is None
    assert project(big, TIERS["b200"], Efficiency(0.7, 0.7, "test")).fits


def test_calibration_reproduces_the_measured_llm_time():
    tier = TIERS["cpu-2vcpu"]
    slow = point(
        stages={
            "preprocess": StageWork(flops=0, bytes_moved=0, measured_s=0.001),
            "scoring": StageWork(flops=2e12, bytes_moved=4e9, measured_s=20.0),  # slower than the defaults predict
        }
    )
    efficiency = calibrate(slow, tier)
    assert efficiency.compute < tier.compute_efficiency and "calibrated" in efficiency.source
    assert project(slow, tier, efficiency).batch_p50_s == pytest.approx(20.0 + 0.001)


def test_cost_table_marks_measured_and_projected_and_reports_projection_error():
    rows = cost_table([point()], {"cpu-2vcpu": TIERS["cpu-2vcpu"], "h100-sxm": TIERS["h100-sxm"]})
    by_tier = {row.timing.tier: row for row in rows}
    assert by_tier["cpu-2vcpu"].basis == "measured"
    assert by_tier["h100-sxm"].basis == "projected"
    assert by_tier["cpu-2vcpu"].projection_error is not None
    assert by_tier["h100-sxm"].projection_error is None


def test_capacity_plan_for_a_known_case():
    tier = replace(TIERS["a10g"], price_per_hour=2.0, devices_per_instance=1, owned=None)
    fast = point(path="b8.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2)  # 80 req/s, p99 200 ms
    slow = point(path="b32.json", batch_size=32, batch_p50_s=0.2, batch_p99_s=0.5)  # 160 req/s, p99 500 ms
    rows = [cost_on_tier(p, measured(p, tier), tier) for p in (fast, slow)]
    [plan] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=300, hours_per_day=24, headroom=0.2))
    [line] = plan.tiers
    assert line.meets_slo and line.chosen is not None and line.chosen.point.batch_size == 8
    assert line.machines == math.ceil(1000 * 1.2 / 80)  # 15
    assert line.monthly_cost_usd == pytest.approx(15 * 2.0 * 24 * 365.25 / 12)
    assert plan.cheapest is line
    [strict] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=100))
    assert not strict.tiers[0].meets_slo and "exceeds the SLO" in strict.tiers[0].reason


def test_capacity_plan_prefers_a_load_test_over_batch_latency():
    tier = replace(TIERS["a10g"], price_per_hour=2.0, devices_per_instance=1, owned=None)
    batch_only = point(path="b8.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2)  # 80 req/s isolated
    load_tested = point(path="load.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2,
                        load_sustained_qps=50.0, load_p99_slo_ms=300.0)  # fmt: skip
    rows = [cost_on_tier(p, measured(p, tier), tier) for p in (batch_only, load_tested)]
    [plan] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=300, headroom=0.2))
    [line] = plan.tiers
    assert line.requests_per_s_per_machine == 50.0 and line.reason == "from a load test"
    assert line.machines == math.ceil(1000 * 1.2 / 50)  # 24, not the 15 isolated batches suggest
    # A load test judged against a looser bound than the plan's does not count.
    [strict] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=250, headroom=0.2))
    assert strict.tiers[0].requests_per_s_per_machine == 80.0


def test_owned_hardware_pays_its_purchase_around_the_clock():
    owned = OwnedCost(
        purchase_price_usd=HOURS_PER_YEAR, lifetime_years=1.0, power_cost_per_kwh=0.10, pue=1.0, source="t", date="d"
    )
    tier = replace(TIERS["rtx-4090"], owned=owned, devices_per_instance=1, tdp_watts=1000.0)
    p = point(batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2, energy_j_per_batch=100.0)  # 1000 W while busy
    rows = [cost_on_tier(p, measured(p, tier), tier)]
    [plan] = plan_capacity(rows, PlanSettings(qps=80, slo_p99_ms=300, hours_per_day=8, headroom=0.0))
    # $1/h amortised all day + 1 kW x $0.10/kWh for the 8 hours in use, one machine.
    assert plan.tiers[0].monthly_cost_usd == pytest.approx((1.0 * 24 + 0.1 * 8) * 365.25 / 12)


@pytest.mark.parametrize("bad", [{"qps": float("nan")}, {"slo_p99_ms": 0.0}, {"headroom": float("inf")}])
def test_plan_settings_are_checked_one_field_at_a_time(bad):
    from bench.core.errors import InputError

    settings = {"qps": 10.0, "slo_p99_ms": 100.0, **bad}
    with pytest.raises(InputError, match=f"--{next(iter(bad)).replace('_', '-')}"):
        PlanSettings(**settings)
