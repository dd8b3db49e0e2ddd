"""Vendor peak FLOPS and memory figures for known GPUs, read from devices.yaml.

Figures live in the data file (with their source and date) so that code never carries hardware
literals; this module only validates, matches device names and converts units.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

DEVICES_PATH = Path(__file__).with_name("devices.yaml")

# torch dtype -> the key its peak is filed under in devices.yaml.
DTYPE_KEYS: dict[torch.dtype, str] = {
    torch.float32: "fp32",
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.float8_e4m3fn: "fp8",
    torch.float8_e5m2: "fp8",
}
FLOPS_KEYS = frozenset({"fp32", "tf32", "bf16", "fp16", "fp8"})

_REQUIRED_FIELDS = ("name", "match", "tflops", "memory_gb", "bandwidth_gb_s", "source", "date")
_OPTIONAL_FIELDS = ("exclude", "unverified")


@dataclass(frozen=True)
class DeviceSpec:
    """One devices.yaml entry, in the file's units."""

    name: str
    match: tuple[str, ...]
    exclude: tuple[str, ...]
    tflops: dict[str, float]  # dense TFLOPS by dtype key
    memory_gb: float
    bandwidth_gb_s: float
    source: str
    date: str
    unverified: frozenset[str]

    def matches(self, device_name: str) -> str | None:
        """The longest `match` substring found in `device_name` on word boundaries, or None."""
        if any(_contains(device_name, veto) for veto in self.exclude):
            return None
        hits = [pattern for pattern in self.match if _contains(device_name, pattern)]
        return max(hits, key=len) if hits else None


@dataclass(frozen=True)
class DevicePeak:
    """The vendor's dense peak for one device and dtype, in SI units."""

    device: str  # devices.yaml entry name, e.g. "H100 SXM"
    dtype: str  # devices.yaml key, e.g. "bf16"
    flops_per_s: float
    memory_bytes: float  # marketed capacity × 1e9
    bandwidth_bytes_per_s: float
    source: str
    date: str
    verified: bool  # False where devices.yaml lists the figure as unverified


def _contains(haystack: str, needle: str) -> bool:
    # Word boundaries: "NVIDIA L4" must not match "NVIDIA L40S", nor "B200" match "GB200".
    pattern = rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])"
    return re.search(pattern, haystack, flags=re.IGNORECASE) is not None


def _positive_number(value: Any) -> bool:
    # bool is an int subclass; `fp32: yes` is a typo, not a figure.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _string_list(value: Any, allow_empty: bool) -> bool:
    return (
        isinstance(value, list)
        and (allow_empty or bool(value))
        and all(isinstance(item, str) and item.strip() for item in value)
    )


def _parse_device(raw: Any, index: int, path: Path) -> DeviceSpec:
    where = f"{path}: devices[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: each device must be a mapping, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: field 'name' must be a non-empty string, got {name!r}")

    def fail(field: str, problem: str) -> ValueError:
        return ValueError(f"{path}: device {name!r}: field {field!r} {problem}")

    unknown = set(raw) - set(_REQUIRED_FIELDS) - set(_OPTIONAL_FIELDS)
    if unknown:
        raise fail(sorted(unknown)[0], "is not a known field")
    for field in _REQUIRED_FIELDS:
        if field not in raw:
            raise fail(field, "is missing")
    if not _string_list(raw["match"], allow_empty=False):
        raise fail("match", f"must be a non-empty list of non-empty strings, got {raw['match']!r}")
    exclude = raw.get("exclude", [])
    if not _string_list(exclude, allow_empty=True):
        raise fail("exclude", f"must be a list of non-empty strings, got {exclude!r}")
    tflops = raw["tflops"]
    if not isinstance(tflops, dict) or not tflops:
        raise fail("tflops", f"must be a non-empty mapping of dtype -> TFLOPS, got {tflops!r}")
    for key, value in tflops.items():
        if key not in FLOPS_KEYS:
            raise fail(f"tflops.{key}", f"is not a known dtype key (expected one of {sorted(FLOPS_KEYS)})")
        if not _positive_number(value):
            raise fail(f"tflops.{key}", f"must be a positive number, got {value!r}")
    for field in ("memory_gb", "bandwidth_gb_s"):
        if not _positive_number(raw[field]):
            raise fail(field, f"must be a positive number, got {raw[field]!r}")
    for field in ("source", "date"):
        # An unquoted 2026-11-01 parses as a date object; insisting on strings keeps the file uniform.
        if not isinstance(raw[field], str) or not raw[field].strip():
            raise fail(field, f"must be a non-empty (quoted) string, got {raw[field]!r}")
    unverified = raw.get("unverified", [])
    if not _string_list(unverified, allow_empty=True) or not set(unverified) <= set(tflops):
        raise fail("unverified", f"must list keys of 'tflops', got {unverified!r}")
    return DeviceSpec(
        name=name,
        match=tuple(raw["match"]),
        exclude=tuple(exclude),
        tflops={key: float(value) for key, value in tflops.items()},
        memory_gb=float(raw["memory_gb"]),
        bandwidth_gb_s=float(raw["bandwidth_gb_s"]),
        source=raw["source"],
        date=raw["date"],
        unverified=frozenset(unverified),
    )


def _parse_file(path: Path) -> tuple[DeviceSpec, ...]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list) or not data["devices"]:
        raise ValueError(f"{path}: expected a top-level 'devices' list with at least one device")
    specs = tuple(_parse_device(raw, i, path) for i, raw in enumerate(data["devices"]))
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"{path}: device {spec.name!r}: field 'name' is duplicated")
        seen.add(spec.name)
    return specs


@functools.cache
def _default_devices() -> tuple[DeviceSpec, ...]:
    return _parse_file(DEVICES_PATH)


def load_devices(path: Path | str | None = None) -> tuple[DeviceSpec, ...]:
    """Validated device entries; the bundled file is parsed once, an explicit path every call."""
    return _default_devices() if path is None else _parse_file(Path(path))


def match_device(device_name: str, path: Path | str | None = None) -> DeviceSpec | None:
    """The entry whose longest match string occurs in `device_name`; earlier entries win ties."""
    best: tuple[int, DeviceSpec] | None = None
    for spec in load_devices(path):
        hit = spec.matches(device_name)
        if hit is not None and (best is None or len(hit) > best[0]):
            best = (len(hit), spec)
    return None if best is None else best[1]


def lookup_device_peak(device_name: str, dtype: torch.dtype, path: Path | str | None = None) -> DevicePeak | None:
    """Vendor dense peak for `device_name` (as torch.cuda.get_device_name() spells it) and `dtype`.

    None when the device is not listed or has no figure for that dtype (e.g. bf16 on a T4).
    """
    spec = match_device(device_name, path)
    key = DTYPE_KEYS.get(dtype)
    if spec is None or key is None or key not in spec.tflops:
        return None
    return DevicePeak(
        device=spec.name,
        dtype=key,
        flops_per_s=spec.tflops[key] * 1e12,
        memory_bytes=spec.memory_gb * 1e9,
        bandwidth_bytes_per_s=spec.bandwidth_gb_s * 1e9,
        source=spec.source,
        date=spec.date,
        verified=key not in spec.unverified,
    )
