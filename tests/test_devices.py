from pathlib import Path

import pytest
import torch

from bench.core.errors import InputError
from bench.hardware.devices import lookup_device_peak
from bench.hardware.tiers import load_tiers


def test_every_gpu_tier_has_a_peak() -> None:
    for name, tier in load_tiers().items():
        if tier.kind == "gpu":
            assert tier.source and tier.date, name
            assert lookup_device_peak(tier.match[0], torch.float32) is not None, name


def test_h100_sxm_bf16() -> None:
    peak = lookup_device_peak("NVIDIA H100 80GB HBM3", torch.bfloat16)
    assert peak is not None
    assert peak.device == "h100-sxm" and peak.dtype == "bf16"
    assert peak.flops_per_s == pytest.approx(989e12)
    assert peak.bandwidth_bytes_per_s == pytest.approx(3350e9)
    assert "NVIDIA" in peak.source and peak.verified


@pytest.mark.parametrize(
    ("name", "dtype", "device", "tflops"),
    [
        ("NVIDIA H100 PCIe", torch.float8_e4m3fn, "h100-pcie", 1513),
        ("NVIDIA L4", torch.float32, "l4", 30.3),
        ("NVIDIA L40S", torch.bfloat16, "l40s", 362),
        ("NVIDIA A100-SXM4-40GB", torch.float32, "a100-40gb", 19.5),
        ("NVIDIA GeForce RTX 4090", torch.float16, "rtx-4090", 165),
        ("Tesla T4", torch.float16, "t4", 65),
    ],
)
def test_lookup_known(name: str, dtype: torch.dtype, device: str, tflops: float) -> None:
    peak = lookup_device_peak(name, dtype)
    assert peak is not None and peak.device == device
    assert peak.flops_per_s == pytest.approx(tflops * 1e12)


def test_b200_fp32_is_marked_unverified() -> None:
    peak = lookup_device_peak("NVIDIA B200", torch.float32)
    assert peak is not None and not peak.verified


@pytest.mark.parametrize("name", ["Some Future GPU", "NVIDIA L40", "NVIDIA GB200", "NVIDIA H200 NVL"])
def test_unknown_or_lookalike_device_is_none(name: str) -> None:
    assert lookup_device_peak(name, torch.bfloat16) is None


def test_dtype_without_a_figure_is_none() -> None:
    assert lookup_device_peak("Tesla T4", torch.bfloat16) is None  # Turing has no bf16
    assert lookup_device_peak("NVIDIA H100 80GB HBM3", torch.int8) is None


GOOD = """
tiers:
  good-gpu:
    kind: gpu
    description: "test"
    match: ["Good"]
    tflops: {fp32: 1, bf16: 2}
    memory_gb: 8
    bandwidth_gb_s: 100
    tdp_watts: 100
    source: "test"
    date: "2026-11"
    price: {per_hour: 1, source: "test", date: "2026-11"}
"""


def test_custom_path_is_used(tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(GOOD)
    peak = lookup_device_peak("ACME Good 9000", torch.bfloat16, path=path)
    assert peak is not None and peak.device == "good-gpu" and peak.flops_per_s == pytest.approx(2e12)
    assert lookup_device_peak("NVIDIA H100 80GB HBM3", torch.bfloat16, path=path) is not None  # bundled kept


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("bf16: 2", "bf16: fast", "tflops.bf16"),
        ("bf16: 2", "bf17: 2", "tflops.bf17"),
        ("memory_gb: 8", "memory_gb: -8", "memory_gb"),
        ('date: "2026-11"\n', "date: 2026-11-01\n", "date"),
        ('source: "test"', 'source: "test"\n    typo: 1', "typo"),
    ],
)
def test_malformed_file_names_tier_and_field(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError, match="good-gpu") as info:
        lookup_device_peak("Good", torch.float32, path=path)
    assert f"tiers.good-gpu.{field}" in str(info.value)
