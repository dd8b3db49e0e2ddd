from pathlib import Path

import pytest
from rich.console import Console

from bench.console.tiers import tiers_table
from bench.core.errors import InputError
from bench.hardware.fingerprint import ISA_LEVELS, Fingerprint
from bench.hardware.tiers import load_tiers, match_tier, peak_flops, tier_for_machine

GPU_TIERS = {"t4", "l4", "a10g", "l40s", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200",
             "rtx-4090"}  # fmt: skip
CPU_TIERS = {"aws-c6a.large", "aws-c7a.large", "aws-c7i.large", "aws-m7g.large"}


def test_bundled_catalogue_has_every_tier_with_positive_figures_and_dated_prices() -> None:
    tiers = load_tiers()
    assert set(tiers) >= GPU_TIERS | CPU_TIERS
    for name, tier in tiers.items():
        assert tier.name == name
        assert tier.kind == ("gpu" if name in GPU_TIERS else "cpu")
        assert tier.peak_flops and all(value > 0 for value in tier.peak_flops.values())
        assert tier.peak_flops.get("fp32", 0) > 0, name
        assert tier.memory_bytes > 0 and tier.bandwidth_bytes_per_s > 0 and tier.tdp_watts > 0
        assert tier.devices_per_instance >= 1
        assert 0 < tier.compute_efficiency <= 1 and 0 < tier.memory_efficiency <= 1 and tier.efficiency_source
        assert tier.source and tier.date
        assert tier.price_per_hour is not None and tier.price_per_hour > 0, name
        assert tier.price_source and tier.price_date, name
        if tier.kind == "cpu":
            assert tier.vcpus and tier.vcpus > 0
            assert tier.isa in dict(ISA_LEVELS), name  # matched by fingerprint, never by vendor string alone
        else:
            assert tier.match, name


def test_bundled_figures_from_facts() -> None:
    tiers = load_tiers()
    h100 = tiers["h100-sxm"]
    assert peak_flops(h100, "bfloat16") == pytest.approx(989e12)
    assert peak_flops(h100, "float16") == pytest.approx(989e12)
    assert peak_flops(h100, "fp8") == pytest.approx(1979e12)
    assert h100.bandwidth_bytes_per_s == pytest.approx(3350e9)
    assert h100.compute_efficiency == pytest.approx(0.80)
    assert tiers["a100-80gb"].compute_efficiency == pytest.approx(0.87)
    assert peak_flops(tiers["t4"], "bfloat16") is None  # Turing has no bf16
    assert not tiers["b200"].verified("tflops.fp32")
    owned = tiers["rtx-4090"].owned
    assert owned is not None and owned.purchase_price_usd == 1599 and owned.pue == pytest.approx(1.58)
    assert tiers["rtx-4090"].owned_cost_per_hour == pytest.approx(
        1599 / (owned.lifetime_years * 365.25 * 24) + 0.450 * 1.58 * owned.power_cost_per_kwh
    )
    with pytest.raises(ValueError, match="unknown dtype"):
        peak_flops(h100, "int8")


@pytest.mark.parametrize(
    ("device", "tier"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L4", "l4"),
        ("nvidia l4", "l4"),
        ("NVIDIA A10G", "a10g"),
        ("Tesla T4", "t4"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA L40", None),
        ("NVIDIA GB200", None),
        ("NVIDIA H200 NVL", None),
        ("NVIDIA GeForce RTX 4090 D", None),
        ("AMD EPYC 9B45", None),
    ],
)
def test_match_tier(device: str, tier: str | None) -> None:
    found = match_tier(device, load_tiers())
    assert (found.name if found else None) == tier


OVERRIDE = """
tiers:
  h100-sxm:
    price: {per_hour: 2.10, source: "our contract", date: "2026-11"}
    tflops: {fp8: null}
  my-box:
    kind: gpu
    description: "Lab workstation"
    match: ["ACME Box"]
    tflops: {fp32: 1, bf16: 2}
    memory_gb: 8
    bandwidth_gb_s: 100
    tdp_watts: 250
    source: "test"
    date: "2026-11"
    owned: {purchase_price_usd: 1000, lifetime_years: 4, power_cost_per_kwh: 0.2, pue: 1.0,
            source: "invoice", date: "2026-01"}
"""


def test_user_file_overrides_a_price_and_adds_a_tier(tmp_path: Path) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text(OVERRIDE)
    tiers = load_tiers([path])
    h100 = tiers["h100-sxm"]
    assert h100.price_per_hour == pytest.approx(2.10) and h100.price_source == "our contract"
    assert h100.price_date == "2026-11" and h100.origin == str(path)
    assert peak_flops(h100, "bf16") == pytest.approx(989e12)  # untouched fields kept
    assert peak_flops(h100, "fp8") is None  # a null removes one dtype
    box = tiers["my-box"]
    assert box.price_per_hour is None and box.compute_efficiency == pytest.approx(0.7)
    assert box.owned_cost_per_hour == pytest.approx(1000 / (4 * 365.25 * 24) + 0.25 * 0.2)
    assert match_tier("ACME Box 9000", tiers) is box
    # The bundled catalogue is not changed by a load with extras.
    assert load_tiers()["h100-sxm"].price_per_hour == pytest.approx(3.20)
    assert "my-box" not in load_tiers()


BASE = """\
tiers:
  my-gpu:
    kind: gpu
    description: "test"
    match: ["My GPU"]
    tflops: {fp32: 1, bf16: 2}
    memory_gb: 8
    bandwidth_gb_s: 100
    tdp_watts: 250
    source: "test"
    date: "2026-11"
    price: {per_hour: 1.5, source: "test", date: "2026-11"}
"""


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("per_hour: 1.5", "per_hour: cheap", "tiers.my-gpu.price.per_hour", "must be a positive number, got 'cheap'"),
        ("per_hour: 1.5", "per_hour: -1.5", "tiers.my-gpu.price.per_hour", "must be a positive number, got -1.5"),
        ("bf16: 2", "bf16: fast", "tiers.my-gpu.tflops.bf16", "must be a positive number"),
        ("bf16: 2", "bf17: 2", "tiers.my-gpu.tflops.bf17", "unknown field (allowed: fp32, tf32"),
        ("memory_gb: 8", "memory_gb: [8]", "tiers.my-gpu.memory_gb", "must be a positive number"),
        ('date: "2026-11"\n', "date: 2026-11-01\n", "tiers.my-gpu.date", "must be a non-empty (quoted) string"),
        ("tdp_watts: 250", "tdp_watts: 250\n    typo: 1", "tiers.my-gpu.typo", "unknown field (allowed: kind,"),
        ("    tdp_watts: 250\n", "", "tiers.my-gpu.tdp_watts", "required field is missing"),
        ('source: "test", date', "date", "tiers.my-gpu.price.source", "required field is missing"),
        ("kind: gpu", "kind: tpu", "tiers.my-gpu.kind", "must be 'cpu' or 'gpu', got 'tpu'"),
        ("kind: gpu", "kind: cpu", "tiers.my-gpu.vcpus", "required for a 'cpu' tier"),
        ("    price:", "    unverified: [tflops.fp8]\n    price:", "tiers.my-gpu.unverified", "'tflops.fp8' is not"),
        ('match: ["My GPU"]', "match: My GPU", "tiers.my-gpu.match", "must be a list of non-empty strings"),
        ("tflops: {fp32: 1, bf16: 2}", "tflops: {}", "tiers.my-gpu.tflops", "at least one dtype"),
        ("price: {per_hour", "price: 3\n    x: {per_hour", "tiers.my-gpu.price", "must be a mapping of fields, got 3"),
        ("  my-gpu:", "  My GPU:", "tiers.My GPU", "tier names must be lowercase"),
    ],
)
def test_bad_file_raises_one_line_naming_file_tier_and_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    path = tmp_path / "my_tiers.yaml"
    assert old in BASE
    path.write_text(BASE.replace(old, new))
    with pytest.raises(InputError) as info:
        load_tiers([path])
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {field}"), text
    assert message in text, text


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text(BASE.replace("memory_gb: 8", "memory_gb: [8"))
    with pytest.raises(InputError, match=r"my_tiers\.yaml: line \d+: YAML syntax error") as info:
        load_tiers([path])
    assert "\n" not in str(info.value)


def test_duplicate_tier_name_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text(BASE + BASE.removeprefix("tiers:\n"))
    with pytest.raises(InputError, match=r"line 13: YAML syntax error: duplicate key 'my-gpu'"):
        load_tiers([path])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "the top level must be a mapping"),
        ("tierz: {}\n", "tierz: unknown key"),
        ("tiers: []\n", "tiers: must be a mapping"),
        ("tiers:\n  h100-sxm: 3\n", "tiers.h100-sxm: must be a mapping of fields, got 3"),
    ],
)
def test_bad_file_structure(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=f"^{path}: {message}"):
        load_tiers([path])


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such tiers file"):
        load_tiers([tmp_path / "nope.yaml"])


def test_override_error_names_the_user_file(tmp_path: Path) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text("tiers:\n  h100-sxm:\n    price: {per_hour: 2.10}\n")
    with pytest.raises(InputError, match=rf"^{path}: tiers\.h100-sxm\.price\.source: required field is missing"):
        load_tiers([path])


def test_tiers_table_renders_and_fits_80_columns() -> None:
    console = Console(record=True, width=80)
    console.print(tiers_table(load_tiers()))
    text = console.export_text()
    table = text.split("owned $/h:")[0]
    assert max(len(line.rstrip()) for line in table.splitlines()) <= 80
    assert "…" not in table  # nothing truncated
    assert "h100-sxm" in text and "3.2" in text and "Hyperstack" in text and "2026-08-26" in text
    assert "aws-c7i.large" in text and "0.682*" in text  # unverified price (rtx-4090) is marked
    assert "989" in text and "avx512-bf16" in text


def cpu(model: str, isa: str, cores: int = 2) -> Fingerprint:
    return Fingerprint(cpu_model=model, isa=isa, logical_cores=cores, memory_gib=8, gpus=(), torch="2.13.0+cpu")


@pytest.mark.parametrize(
    ("fingerprint", "expected"),
    [
        (cpu("AMD EPYC 7R13 Processor", "avx2"), "aws-c6a.large"),  # Zen 3
        (cpu("AMD EPYC 9R14", "avx512-bf16"), "aws-c7a.large"),  # Zen 4: same vendor string, another tier
        (cpu("Intel(R) Xeon(R) Platinum 8488C", "amx"), "aws-c7i.large"),
        (cpu("Neoverse-V1", "sve"), "aws-m7g.large"),
        (cpu("AMD EPYC 7R13 Processor", "avx2", cores=4), None),  # no 4-vCPU tier: measured-only
        (cpu("Intel(R) Xeon(R) Platinum 8375C", "avx512"), None),  # AVX-512 without bf16: no tier
        (cpu("Intel(R) Xeon(R) Platinum 8488C", "avx2"), None),  # a flag-poor VM is not the AMX tier
    ],
)
def test_cpu_tiers_are_matched_by_fingerprint(fingerprint: Fingerprint, expected: str | None) -> None:
    tier = tier_for_machine(device="cpu", device_name=fingerprint.cpu_model, fingerprint=fingerprint,
                            tiers=load_tiers())  # fmt: skip
    assert (tier.name if tier else None) == expected


def test_match_tier_is_for_gpus_only() -> None:
    tiers = load_tiers()
    assert tiers["aws-c7i.large"].matches("Intel(R) Xeon(R) Platinum 8488C")
    assert match_tier("AMD EPYC 7B13 64-Core Processor", tiers) is None


def test_every_problem_of_a_tier_is_on_its_one_line(tmp_path: Path) -> None:
    path = tmp_path / "my_tiers.yaml"
    path.write_text("tiers:\n  t4:\n    price: {per_hour: 0.9}\n")
    with pytest.raises(InputError) as info:
        load_tiers([path])
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: tiers.t4.price.source: required field is missing; ")
    assert "tiers.t4.price.date: required field is missing" in text
    assert "replaces the catalogue's whole: give all its fields" in text
