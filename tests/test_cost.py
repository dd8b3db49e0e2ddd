"""Cost formula, roofline projection, launch floor, memory fit, deterministic calibration, measured-only tiers and
the capacity plan, on hand-computed cases."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from bench.core.errors import InputError
from bench.core.kinds import EnergyKind, EnergyMethod
from bench.cost.capacity import PlanSettings, plan_capacity
from bench.cost.model import (
    MEASURED_ONLY_PREFIX,
    cost_on_tier,
    cost_table,
    efficiency_for,
    owned_hourly,
    row_dict,
)
from bench.cost.projection import (
    Efficiency,
    calibration_scale,
    launch_floor_s,
    measured,
    measured_launch_overhead_us,
    project,
)
from bench.hardware.engines import DEFAULT_ENGINE, load_engines
from bench.hardware.tiers import HOURS_PER_YEAR, OwnedCost, load_tiers
from bench.models.analytic import weights_bytes
from bench.models.presets import get_preset
from bench.results.model import MemoryEstimate
from tests.points import AVX2_EPYC, UNKNOWN_CPU, llm, point

TIERS = load_tiers()


def rented_only(name: str, price: float) -> object:
    return replace(TIERS[name], price_per_hour=price, devices_per_instance=1, owned=None)


def test_measured_cost_is_price_over_recommendations_per_hour():
    tier = rented_only("a10g", 1.0)
    row = cost_on_tier(point(), measured(point(), tier), tier)
    # 4 requests / 10 s = 0.4 req/s = 4 recommendations/s = 14,400 per hour; $1/h -> $69.44 per 1M.
    assert row.recommendations_per_s == pytest.approx(4.0)
    assert row.rented_cost_per_1m_usd == pytest.approx(1e6 / 14_400)
    assert row.owned_cost_per_1m_usd is None


def test_owned_hardware_adds_energy_at_the_pue():
    owned = OwnedCost(
        purchase_price_usd=HOURS_PER_YEAR, lifetime_years=1.0, power_cost_per_kwh=0.10, pue=1.5, source="t", date="d"
    )
    tier = replace(TIERS["rtx-4090"], owned=owned, devices_per_instance=1)
    # $1/h amortised + 0.5 kW x 1.5 x $0.10 = $1.075/h
    assert owned_hourly(tier, average_watts=500.0) == pytest.approx(1.075)


def test_rented_and_owned_are_separate_columns():
    owned = OwnedCost(
        purchase_price_usd=HOURS_PER_YEAR, lifetime_years=1.0, power_cost_per_kwh=0.10, pue=1.0, source="t", date="d"
    )
    tier = replace(TIERS["rtx-4090"], owned=owned, price_per_hour=3.0, devices_per_instance=1, tdp_watts=1000.0)
    row = cost_on_tier(point(), measured(point(), tier), tier)
    assert row.rented_hourly_usd == pytest.approx(3.0)
    assert row.owned_hourly_usd == pytest.approx(1.0 + 0.1)  # TDP x time: 1 kW while busy
    flat = row_dict(row)
    assert flat["rented_usd_per_hour"] == pytest.approx(3.0) and flat["owned_usd_per_hour"] == pytest.approx(1.1)


def test_projection_is_host_median_plus_the_llm_roofline():
    tier = replace(TIERS["h100-sxm"], peak_flops={"bf16": 1e15}, bandwidth_bytes_per_s=2e12, memory_bytes=80e9)
    efficiency = Efficiency(compute=0.5, memory=0.5, source="test")
    p = point(llm=llm(host_s=0.002))
    timing = project(p, tier, efficiency)
    # bf16 halves the bytes: compute 2e12 / (1e15 * 0.5) = 4 ms; memory 2e9 / (2e12 * 0.5) = 2 ms -> 4 ms,
    # plus 1 ms of preprocessing and 2 ms of prompt building kept as measured (medians).
    assert timing.dtype == "bfloat16"
    assert timing.llm_bound == "compute"
    assert timing.batch_p50_s == pytest.approx(0.004 + 0.001 + 0.002 + 0)
    assert timing.batch_p99_s == pytest.approx(timing.batch_p50_s * 1.2)
    assert "measured p99/p50" in timing.p99_basis and "20 batches" in timing.p99_basis


def test_the_roofline_is_taken_per_kind_of_operator_and_summed():
    from bench.models.analytic import PartWork

    tier = replace(TIERS["h100-sxm"], peak_flops={"bf16": 1e15}, bandwidth_bytes_per_s=1e12, memory_bytes=80e9)
    full = Efficiency(1.0, 1.0, "test")
    # Matmuls compute-bound (2 ms vs 1 ms), attention memory-bound (0.1 ms vs 5 ms): they run one after the other,
    # so 7 ms, where one roofline over the totals would say max(2.1, 6) = 6 ms.
    parts = (PartWork("linear", 2e12, 1e9), PartWork("attention", 1e11, 5e9))
    split = project(point(dtype="bfloat16", llm=llm(flops=2.1e12, bytes_moved=6e9, parts=parts)), tier, full)
    assert split.llm_s == pytest.approx(0.007)
    assert split.llm_bound == "memory"  # the larger share of the 7 ms
    whole = project(point(dtype="bfloat16", llm=llm(flops=2.1e12, bytes_moved=6e9)), tier, full)
    assert whole.llm_s == pytest.approx(0.006)


def test_memory_bound_projection():
    tier = replace(TIERS["h100-sxm"], peak_flops={"bf16": 1e15}, bandwidth_bytes_per_s=1e11, memory_bytes=80e9)
    timing = project(point(), tier, Efficiency(1.0, 1.0, "test"))
    assert timing.llm_bound == "memory"
    assert timing.batch_p50_s == pytest.approx(2e9 / 1e11 + 0.001)


def test_a_small_model_on_a_gpu_is_bound_by_kernel_launches():
    tiny = point(llm=llm(flops=1e9, bytes_moved=1e8, forwards=2, ops_per_forward=100.0))
    engine = load_engines()[DEFAULT_ENGINE]
    tier = TIERS["h100-sxm"]
    floor = launch_floor_s(tiny, tier)
    assert floor == pytest.approx(2 * 100 * engine.launch_overhead_us * 1e-6)
    timing = project(tiny, tier, Efficiency(0.5, 0.5, "test"))
    assert timing.llm_bound == "launch"
    assert timing.batch_p50_s == pytest.approx(floor + 0.001)
    # A measured overhead replaces the cited one; a CPU tier has no launch floor.
    assert launch_floor_s(tiny, tier, launch_overhead_us=1.0) == pytest.approx(2 * 100 * 1e-6)
    assert launch_floor_s(tiny, TIERS["aws-c6a.large"]) == 0.0


def test_a_70b_fp16_model_does_not_fit_a_24_gb_tier():
    need = weights_bytes(get_preset("llama-3.1-70b"), dtype="bfloat16")
    estimate = MemoryEstimate(weights_bytes=need, kv_cache_bytes=0, activations_bytes=0, total_bytes=need)
    big = point(dtype="bfloat16", memory_need=estimate)
    timing = project(big, TIERS["l4"], Efficiency(0.7, 0.7, "test"))
    assert not timing.fits and timing.batch_p50_s is None
    row = cost_on_tier(big, timing, TIERS["l4"])
    assert row.rented_cost_per_1m_usd is None
    assert project(big, TIERS["b200"], Efficiency(0.7, 0.7, "test")).fits


def test_an_avx2_epyc_is_measured_on_its_tier_and_calibration_reproduces_its_llm_time():
    slow = point(llm=llm(measured_s=20.0))  # slower than the catalogue defaults predict
    table = cost_table([slow], {"aws-c6a.large": TIERS["aws-c6a.large"], "h100-sxm": TIERS["h100-sxm"]})
    by_tier = {row.timing.tier: row for row in table.rows}
    assert by_tier["aws-c6a.large"].basis == "measured" and by_tier["h100-sxm"].basis == "projected"
    assert by_tier["aws-c6a.large"].projection_error is not None and by_tier["h100-sxm"].projection_error is None
    [*_, overall] = table.calibrations
    assert overall.tier == "aws-c6a.large" and overall.results == ("r.json",)
    efficiency = efficiency_for(TIERS["aws-c6a.large"], "m", table.calibrations)
    assert "calibrated" in efficiency.source
    assert project(slow, TIERS["aws-c6a.large"], efficiency).batch_p50_s == pytest.approx(20.0 + 0.001)
    # A GPU tier is never calibrated from a CPU measurement.
    assert efficiency_for(TIERS["h100-sxm"], "m", table.calibrations).source == "catalogue default"


def test_calibration_is_the_median_and_the_order_of_the_inputs_changes_nothing():
    points = [
        point(path=f"r{i}.json", batch_size=4 * (i + 1), llm=llm(measured_s=s)) for i, s in enumerate((8, 20, 11))
    ]
    tiers = {name: TIERS[name] for name in ("aws-c6a.large", "aws-c7a.large", "t4", "h100-sxm")}
    reference = cost_table(points, tiers)
    [overall] = [c for c in reference.calibrations if c.model is None]
    assert overall.results == ("r0.json", "r1.json", "r2.json")
    middle = cost_table([points[2]], tiers).calibrations[-1]
    assert overall.scale == pytest.approx(middle.scale)  # the median point's own scale
    expected = [row_dict(r) for r in reference.rows]
    for seed in range(3):
        shuffled = random.Random(seed).sample(points, len(points))
        rows = sorted((row_dict(r) for r in cost_table(shuffled, tiers).rows), key=lambda d: (d["result"], d["tier"]))
        assert rows == sorted(expected, key=lambda d: (d["result"], d["tier"]))


def test_an_unknown_cpu_is_a_measured_only_tier_and_is_priced_only_when_asked():
    unknown = point(fingerprint=UNKNOWN_CPU, device_name=UNKNOWN_CPU.cpu_model, machine="hygon-16c")
    tiers = {name: TIERS[name] for name in ("aws-c6a.large", "h100-sxm")}
    table = cost_table([unknown], tiers)
    home = f"{MEASURED_ONLY_PREFIX}hygon-16c"
    by_tier = {row.timing.tier: row for row in table.rows}
    assert by_tier[home].basis == "measured" and by_tier[home].rented_cost_per_1m_usd is None
    assert "measured-only" in table.tiers[home].notes and "--price-per-hour" in table.tiers[home].notes
    assert by_tier["aws-c6a.large"].basis == "projected"  # never taken for the machine it was measured on
    assert table.calibrations == []  # a machine the catalogue does not describe calibrates nothing
    priced = {r.timing.tier: r for r in cost_table([unknown], tiers, price_per_hour=0.5).rows}
    assert priced[home].rented_cost_per_1m_usd == pytest.approx(0.5 / (4 / 10.0 * 10 * 3600) * 1e6)


def test_measured_on_names_a_tier_of_the_results_kind_isa_and_size_or_is_refused():
    tiers = {name: TIERS[name] for name in ("aws-c6a.large", "aws-c7a.large", "h100-sxm")}
    table = cost_table([point()], tiers, measured_on="aws-c6a.large")
    assert {r.timing.tier: r.basis for r in table.rows}["aws-c6a.large"] == "measured"
    with pytest.raises(InputError, match=r"^--measured-on h100-sxm: a gpu tier, but r.json was measured on AMD"):
        cost_table([point()], tiers, measured_on="h100-sxm")
    with pytest.raises(InputError, match=r"^--measured-on aws-c7a.large: a CPU tier for AVX512-BF16 with 2 vCPUs"):
        cost_table([point()], tiers, measured_on="aws-c7a.large")
    # Over results from several machines it names the tier of those it describes; the others are matched as usual.
    unknown = point(path="u.json", fingerprint=UNKNOWN_CPU, device_name=UNKNOWN_CPU.cpu_model, machine="hygon-16c")
    with pytest.warns(UserWarning, match=r"--measured-on aws-c6a.large: not applied to 1 result\(s\) .* u.json"):
        mixed = cost_table([point(), unknown], tiers, measured_on="aws-c6a.large")
    homes = {(r.point.path, r.timing.tier) for r in mixed.rows if r.basis == "measured"}
    assert homes == {("r.json", "aws-c6a.large"), ("u.json", f"{MEASURED_ONLY_PREFIX}hygon-16c")}
    with pytest.raises(InputError, match=r"^--measured-on aws-c7a\.large: "):
        cost_table([point(), unknown], tiers, measured_on="aws-c7a.large")  # it describes neither


def test_a_load_tests_batches_are_priced_by_the_requests_they_carried():
    # A single-stream LoadGen run of a scenario with batch_size 4: every batch carried one query.
    tier = TIERS["aws-c6a.large"]
    single = point(batch_size=4, requests_per_batch=1.0, load_mode="single_stream", batch_p50_s=0.0667,
                   batch_p99_s=0.08, energy_j_per_batch=0.2)  # fmt: skip
    row = cost_on_tier(single, measured(single, tier), tier)
    assert row.isolated_requests_per_s == pytest.approx(1 / 0.0667)  # not 4 / 0.0667
    # No meter: full TDP over a batch, shared by the one request it carried (not four).
    assert row.energy_j_per_recommendation == pytest.approx(tier.tdp_watts * 0.0667 / single.top_n)
    assert single.batch_label == "1 (mean, up to 4)"
    assert "of a LoadGen single_stream run, 1 requests each on average" in measured(single, tier).p99_basis
    plain = point(batch_size=4, batch_p50_s=0.0667)
    assert cost_on_tier(plain, measured(plain, tier), tier).isolated_requests_per_s == pytest.approx(4 / 0.0667)


def test_energy_has_one_basis_a_meter_only_where_it_was_read():
    metered = point(energy_j_per_batch=50.0, energy_method=EnergyMethod.RAPL)
    tiers = {"aws-c6a.large": TIERS["aws-c6a.large"], "h100-sxm": TIERS["h100-sxm"]}
    by_tier = {r.timing.tier: r for r in cost_table([metered], tiers).rows}
    assert by_tier["aws-c6a.large"].energy_kind == EnergyKind.MEASURED
    assert by_tier["aws-c6a.large"].energy_j_per_recommendation == pytest.approx(50.0 / 40)
    projected = by_tier["h100-sxm"]
    assert projected.energy_kind == EnergyKind.MODELLED and "TDP" in (projected.energy_basis or "")
    # Without a meter the measured tier is modelled the same way as every other tier: TDP x batch time.
    modelled = {r.timing.tier: r for r in cost_table([point(energy_j_per_batch=50.0)], tiers).rows}
    home = modelled["aws-c6a.large"]
    assert home.energy_kind == EnergyKind.MODELLED
    assert home.energy_j_per_recommendation == pytest.approx(TIERS["aws-c6a.large"].tdp_watts * 10.0 / 40)


def test_capacity_plan_for_a_known_case():
    tier = rented_only("a10g", 2.0)
    fast = point(path="b8.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2)  # 80 req/s, p99 200 ms
    slow = point(path="b32.json", batch_size=32, batch_p50_s=0.2, batch_p99_s=0.5)  # 160 req/s, p99 500 ms
    rows = [cost_on_tier(p, measured(p, tier), tier) for p in (fast, slow)]
    [plan] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=300, hours_per_day=24, headroom=0.2))
    [line] = plan.tiers
    assert line.meets_slo and line.chosen is not None and line.chosen.point.batch_size == 8
    assert line.machines == math.ceil(1000 * 1.2 / 80)  # 15
    assert line.rented_monthly_usd == pytest.approx(15 * 2.0 * 24 * 365.25 / 12)
    assert line.owned_monthly_usd is None
    assert plan.cheapest is line
    # 20 batches: the p99 that met the SLO is close to their maximum, and the plan says so.
    assert line.slo_weak and "weak" in line.slo_basis
    [strict] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=100))
    assert not strict.tiers[0].meets_slo and "exceeds the SLO" in strict.tiers[0].reason


def test_a_p99_from_enough_batches_is_not_flagged():
    tier = rented_only("a10g", 2.0)
    p = point(batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2, batches=200)
    [plan] = plan_capacity([cost_on_tier(p, measured(p, tier), tier)], PlanSettings(qps=10, slo_p99_ms=300))
    assert not plan.tiers[0].slo_weak and "measured over 200 batches" in plan.tiers[0].slo_basis


def test_capacity_plan_prefers_a_load_test_over_batch_latency():
    tier = rented_only("a10g", 2.0)
    batch_only = point(path="b8.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2)  # 80 req/s isolated
    load_tested = point(path="load.json", batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2,
                        load_sustained_qps=50.0, load_p99_slo_ms=300.0)  # fmt: skip
    rows = [cost_on_tier(p, measured(p, tier), tier) for p in (batch_only, load_tested)]
    [plan] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=300, headroom=0.2))
    [line] = plan.tiers
    assert line.requests_per_s_per_machine == 50.0 and line.reason == "from a load test"
    assert line.machines == math.ceil(1000 * 1.2 / 50)  # 24, not the 15 isolated batches suggest
    assert not line.slo_weak and "load test" in line.slo_basis
    # A load test judged against a looser bound than the plan's does not count.
    [strict] = plan_capacity(rows, PlanSettings(qps=1000, slo_p99_ms=250, headroom=0.2))
    assert strict.tiers[0].requests_per_s_per_machine == 80.0


def owned_cheap_rented_dear() -> tuple[object, object]:
    owned = OwnedCost(
        purchase_price_usd=HOURS_PER_YEAR, lifetime_years=1.0, power_cost_per_kwh=0.10, pue=1.0, source="t", date="d"
    )
    dear = replace(TIERS["rtx-4090"], owned=owned, price_per_hour=5.0, devices_per_instance=1, tdp_watts=1000.0)
    rented = replace(TIERS["a10g"], name="a10g", price_per_hour=2.0, devices_per_instance=1, owned=None)
    return dear, rented


def test_owned_hardware_pays_its_purchase_around_the_clock():
    owned_tier, _ = owned_cheap_rented_dear()
    p = point(batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2, energy_j_per_batch=100.0)
    rows = [cost_on_tier(p, measured(p, owned_tier), owned_tier)]
    [plan] = plan_capacity(rows, PlanSettings(qps=80, slo_p99_ms=300, hours_per_day=8, headroom=0.0))
    # $1/h amortised all day + 1 kW (TDP x time) x $0.10/kWh for the 8 hours in use, one machine.
    assert plan.tiers[0].owned_monthly_usd == pytest.approx((1.0 * 24 + 0.1 * 8) * 365.25 / 12)
    assert plan.tiers[0].rented_monthly_usd == pytest.approx(5.0 * 8 * 365.25 / 12)


def test_cheapest_is_rented_unless_owned_is_asked_for():
    owned_tier, rented_tier = owned_cheap_rented_dear()
    p = point(batch_size=8, batch_p50_s=0.1, batch_p99_s=0.2)
    rows = [cost_on_tier(p, measured(p, t), t) for t in (owned_tier, rented_tier)]
    [rented_plan] = plan_capacity(rows, PlanSettings(qps=80, slo_p99_ms=300, headroom=0.0))
    assert rented_plan.cheapest is not None and rented_plan.cheapest.tier == "a10g"  # $2/h beats $5/h rented
    [owned_plan] = plan_capacity(rows, PlanSettings(qps=80, slo_p99_ms=300, headroom=0.0, include_owned=True))
    assert owned_plan.cheapest is not None and owned_plan.cheapest.tier == "rtx-4090"  # $1.1/h owned


@pytest.mark.parametrize("bad", [{"qps": float("nan")}, {"slo_p99_ms": 0.0}, {"headroom": float("inf")}])
def test_plan_settings_are_checked_one_field_at_a_time(bad):
    from bench.core.errors import InputError

    settings = {"qps": 10.0, "slo_p99_ms": 100.0, **bad}
    with pytest.raises(InputError, match=f"--{next(iter(bad)).replace('_', '-')}"):
        PlanSettings(**settings)


# ------------------------------------------------------------------------- GPU results, unknown machines

H100_HOST = replace(AVX2_EPYC, gpus=("NVIDIA H100 80GB HBM3",))


def gpu(**overrides: object):
    base = dict(device="cuda", device_name="NVIDIA H100 80GB HBM3", fingerprint=H100_HOST, dtype="bfloat16")
    base.update(overrides)
    return point(**base)


def test_measured_on_names_the_tier_of_the_results_gpu_or_one_the_catalogue_cannot_name():
    tiers = {name: TIERS[name] for name in ("h100-sxm", "rtx-4090")}
    h100 = gpu()
    homes = {r.timing.tier for r in cost_table([h100], tiers, measured_on="h100-sxm").rows if r.basis == "measured"}
    assert homes == {"h100-sxm"}
    with pytest.raises(
        InputError,
        match=r"^--measured-on rtx-4090: the tier of another GPU, but r.json was "
        r"measured on NVIDIA H100 80GB HBM3, which is h100-sxm; leave it out",
    ):
        cost_table([h100], tiers, measured_on="rtx-4090")
    # Another tier for the same GPU (a tiers file's spot price) names it too.
    spot = replace(TIERS["h100-sxm"], name="h100-sxm-spot", price_per_hour=1.0)
    rows = cost_table([h100], {**tiers, spot.name: spot}, measured_on="h100-sxm-spot").rows
    assert {r.timing.tier for r in rows if r.basis == "measured"} == {"h100-sxm-spot"}
    # A GPU the catalogue has no name for may be told which tier it is.
    p100_host = replace(AVX2_EPYC, gpus=("Tesla P100-PCIE-16GB",))
    p100 = gpu(device_name="Tesla P100-PCIE-16GB", fingerprint=p100_host, machine="p100-box")
    rows = cost_table([p100], tiers, measured_on="rtx-4090").rows
    assert {r.timing.tier for r in rows if r.basis == "measured"} == {"rtx-4090"}


def test_only_a_launch_bound_gpu_result_measures_the_launch_overhead():
    tier = TIERS["h100-sxm"]
    launch_bound = gpu(llm=llm(flops=1e9, bytes_moved=1e8, measured_s=0.003, ops_per_forward=169.0))
    assert measured_launch_overhead_us(launch_bound, tier) == pytest.approx(
        (0.003 - max(1e9 / (989e12 * tier.compute_efficiency), 1e8 / (3.35e12 * tier.memory_efficiency))) / 169 * 1e6
    )
    # Half of peak on a big forward is inefficiency, not 385 us per launch.
    compute_heavy = gpu(llm=llm(flops=4.9e14, bytes_moved=1.6e10, measured_s=1.0, forwards=2, ops_per_forward=649.0))
    assert measured_launch_overhead_us(compute_heavy, tier) is None
    # ...and a launch-bound point calibrates nothing, while the compute-heavy one does.
    assert calibration_scale(launch_bound, tier) is None
    assert calibration_scale(compute_heavy, tier) == pytest.approx(
        (4.9e14 / (989e12 * tier.compute_efficiency)) / (1.0 - launch_floor_s(compute_heavy, tier))
    )


def test_a_float32_gpu_result_is_calibrated_against_the_float32_peak():
    tier = TIERS["h100-sxm"]
    fp32 = gpu(dtype="float32", llm=llm(flops=6.7e12, bytes_moved=1e9, measured_s=0.2))
    expected = (6.7e12 / (67e12 * tier.compute_efficiency)) / (0.2 - launch_floor_s(fp32, tier))
    assert calibration_scale(fp32, tier) == pytest.approx(expected)


def test_results_of_unknown_machines_each_keep_their_own_tier_in_any_order():
    p100_host = replace(AVX2_EPYC, gpus=("Tesla P100-PCIE-16GB",))
    a = gpu(path="a.json", device_name="Tesla P100-PCIE-16GB", fingerprint=p100_host, machine="p100-box")
    b = replace(a, path="b.json")
    rows = cost_table([a, b], {"h100-sxm": TIERS["h100-sxm"]}).rows
    assert [(r.point.path, r.timing.tier) for r in rows if r.basis == "measured"] == [
        ("a.json", "measured-p100-box"), ("b.json", "measured-p100-box")]  # fmt: skip
    hygon = point(path="h.json", fingerprint=UNKNOWN_CPU, device_name=UNKNOWN_CPU.cpu_model, machine="hygon")
    xeon_fp = replace(UNKNOWN_CPU, cpu_model="Intel(R) Xeon(R) CPU E5-2680 v4")
    xeon = point(path="x.json", fingerprint=xeon_fp, device_name=xeon_fp.cpu_model, machine="xeon")
    for order in ([hygon, xeon], [xeon, hygon]):
        homes = {r.point.path: r.timing.tier for r in cost_table(order, {}).rows if r.basis == "measured"}
        assert homes == {"h.json": "measured-hygon", "x.json": "measured-xeon"}


def test_a_plan_on_isolated_batches_uses_their_throughput_not_a_looser_load_test():
    tier = rented_only("a10g", 2.0)
    p = point(batch_size=4, batch_p50_s=0.1, batch_p99_s=0.15, load_sustained_qps=80.0, load_p99_slo_ms=1000.0)
    rows = [cost_on_tier(p, measured(p, tier), tier)]
    [plan] = plan_capacity(rows, PlanSettings(qps=100, slo_p99_ms=200, headroom=0.0))
    assert plan.tiers[0].requests_per_s_per_machine == pytest.approx(40.0)  # 4 / 0.1 s, not the load test's 80
    assert plan.tiers[0].machines == 3


def test_plan_settings_bound_what_would_overflow():
    from bench.core.errors import InputError

    with pytest.raises(InputError, match="--qps"):
        PlanSettings(qps=1e308, slo_p99_ms=100)
    with pytest.raises(InputError, match="--headroom"):
        PlanSettings(qps=10, slo_p99_ms=100, headroom=1e6)


def test_a_results_llm_work_is_split_by_kind_of_operator_keeping_its_totals():
    from pathlib import Path

    from bench.cost.projection import operating_point
    from bench.results.reader import read_results

    [stored, *_] = read_results([Path(__file__).parent / "fixtures" / "results-v1"])
    work = operating_point(stored).llm
    assert [part.name for part in work.parts] == ["linear", "attention", "lm_head"]
    assert sum(part.flops for part in work.parts) == pytest.approx(work.flops)
    assert work.bytes_moved is not None
    assert sum(part.bytes_moved or 0 for part in work.parts) == pytest.approx(work.bytes_moved)
