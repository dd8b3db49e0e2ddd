"""The hardware tier catalogue (tiers.yaml): peak FLOPS, memory, bandwidth, power and prices per tier.

Figures live in the data file with their sources and dates, so code never carries hardware literals. This
module validates the file (and any user files layered on top of it), converts units to SI and matches
CUDA device names to tiers.

Layering: `load_tiers(extra)` reads the bundled catalogue, then each extra file in order. A tier whose name
already exists is merged field by field: each field the user file gives replaces the earlier value, except
`tflops`, which is merged per dtype (a `null` removes one). Blocks with their own provenance (`price`,
`owned`) are replaced whole, so a new price always comes with its own source and date.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from bench.core.device import Device
from bench.core.dtypes import CATALOGUE_KEYS, catalogue_key, known_spellings
from bench.core.errors import InputError
from bench.core.io import why_not_found
from bench.core.validation import NUMBER_AS_TEXT_HINT, allowed_keys_hint
from bench.core.yaml_files import read_yaml
from bench.hardware.fingerprint import ISA_LEVELS, Fingerprint

TIERS_PATH = Path(__file__).with_name("tiers.yaml")

FLOPS_KEYS = CATALOGUE_KEYS
HOURS_PER_YEAR = 365.25 * 24
_TIER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


# ------------------------------------------------------------------------------------------ public types


@dataclass(frozen=True, kw_only=True)
class OwnedCost:
    """Cost basis for hardware you buy: straight-line amortisation plus electricity at the wall."""

    purchase_price_usd: float
    lifetime_years: float
    power_cost_per_kwh: float  # USD per kWh
    pue: float  # power usage effectiveness: facility power / IT power (>= 1)
    source: str
    date: str

    @property
    def amortised_per_hour(self) -> float:
        """Purchase price spread evenly over every hour of the lifetime, USD/hour."""
        return self.purchase_price_usd / (self.lifetime_years * HOURS_PER_YEAR)

    def energy_cost_per_hour(self, watts: float) -> float:
        """Electricity for drawing `watts` for one hour, facility overhead (PUE) included, USD/hour."""
        return watts / 1000 * self.pue * self.power_cost_per_kwh


@dataclass(frozen=True, kw_only=True)
class Tier:
    """One catalogue entry, in SI units. Figures are per device; the price is for the whole instance."""

    name: str  # catalogue key, e.g. "h100-sxm"
    kind: str  # "cpu" or "gpu"
    description: str
    match: tuple[str, ...]  # substrings of torch.cuda.get_device_name() (whole words, any case)
    exclude: tuple[str, ...]  # substrings that veto a match
    peak_flops: Mapping[str, float]  # dense FLOP/s by catalogue dtype key (fp32, tf32, bf16, fp16, fp8)
    memory_bytes: float
    bandwidth_bytes_per_s: float
    tdp_watts: float  # per device; for CPU tiers the instance's share of the host CPU
    devices_per_instance: int
    vcpus: int | None
    isa: str | None  # CPU tiers: the ISA level a machine must have (bench.hardware.fingerprint)
    price_per_hour: float | None  # on-demand USD/hour for the instance as priced
    price_source: str | None
    price_date: str | None
    owned: OwnedCost | None
    compute_efficiency: float  # fraction of peak FLOP/s a roofline projection assumes
    memory_efficiency: float  # fraction of peak bandwidth a roofline projection assumes
    efficiency_source: str
    source: str  # provenance of the hardware figures
    date: str
    unverified: frozenset[str]  # field paths, e.g. "tflops.fp32", "price", "tdp_watts"
    notes: str
    origin: str  # the file that defined or last overrode this tier

    def matches(self, device_name: str) -> str | None:
        """The longest `match` substring found in `device_name` on word boundaries, or None."""
        if any(_contains(device_name, veto) for veto in self.exclude):
            return None
        hits = [pattern for pattern in self.match if _contains(device_name, pattern)]
        return max(hits, key=len) if hits else None

    def verified(self, field: str) -> bool:
        """False where the catalogue lists `field` (e.g. "tflops.fp32", "price") as unverified."""
        return field not in self.unverified

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # A tier travels to Ray workers; MappingProxyType does not pickle, so it goes as a plain dict.
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["peak_flops"] = dict(self.peak_flops)
        return _tier_from_state, (state,)

    @property
    def price_per_device_hour(self) -> float | None:
        """On-demand USD/hour for one device (the instance price split evenly)."""
        return None if self.price_per_hour is None else self.price_per_hour / self.devices_per_instance

    @property
    def owned_cost_per_hour(self) -> float | None:
        """USD/hour to own the whole instance running flat out at TDP: amortisation + electricity."""
        if self.owned is None:
            return None
        per_device = self.owned.amortised_per_hour + self.owned.energy_cost_per_hour(self.tdp_watts)
        return per_device * self.devices_per_instance


def _tier_from_state(state: dict[str, Any]) -> Tier:
    return Tier(**{**state, "peak_flops": MappingProxyType(state["peak_flops"])})


def peak_flops(tier: Tier, dtype: str) -> float | None:
    """Dense peak FLOP/s of `tier` for `dtype` ("float32", "bfloat16", "float16", "fp8", ...).

    None when the tier lists no figure for that dtype (e.g. bf16 on a T4); ValueError for a dtype name
    that is not a floating-point type the catalogue knows.
    """
    key = catalogue_key(dtype)
    if key is None:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(known_spellings())})")
    return tier.peak_flops.get(key)


def match_tier(device_name: str, tiers: Mapping[str, Tier]) -> Tier | None:
    """The GPU tier whose longest match string occurs in `device_name`; earlier tiers win ties."""
    best: tuple[int, Tier] | None = None
    for tier in tiers.values():
        if tier.kind != "gpu":
            continue
        hit = tier.matches(device_name)
        if hit is not None and (best is None or len(hit) > best[0]):
            best = (len(hit), tier)
    return None if best is None else best[1]


def load_tiers(extra: Sequence[Path | str] = ()) -> dict[str, Tier]:
    """The bundled catalogue with each file of `extra` layered on top, in order (see the module doc).

    Raises InputError with one line naming the file, the tier and the field for any problem.
    """
    raw, tiers = _bundled()
    if not extra:
        return dict(tiers)
    raw, tiers = copy.deepcopy(raw), dict(tiers)
    for path in extra:
        _apply_file(Path(path), raw, tiers)
    return tiers


# ---------------------------------------------------------------------------------- field validators


def _is_number(value: Any) -> bool:
    # bool is an int subclass; `per_hour: yes` is a typo, not a figure.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _got(value: Any) -> str:
    text = f"got {value!r}"
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return text
        return f"{text} ({NUMBER_AS_TEXT_HINT})"
    return text


def _positive(value: Any) -> Any:
    if value is None or not _is_number(value) or value <= 0:
        raise ValueError(f"must be a positive number, {_got(value)}")
    return value


def _optional_positive(value: Any) -> Any:
    return None if value is None else _positive(value)


def _fraction(value: Any) -> Any:
    if not _is_number(value) or not 0 < value <= 1:
        raise ValueError(f"must be a number in (0, 1], {_got(value)}")
    return value


def _pue(value: Any) -> Any:
    if not _is_number(value) or value < 1:
        raise ValueError(f"must be a number >= 1 (facility power / IT power), {_got(value)}")
    return value


def _count(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"must be a whole number >= 1, got {value!r}")
    return value


def _text(value: Any) -> Any:
    # An unquoted 2026-11-01 parses as a date object; insisting on strings keeps the files uniform.
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty (quoted) string, got {value!r}")
    return value


def _strings(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError(f"must be a list of non-empty strings, got {value!r}")
    return value


def _kind(value: Any) -> Any:
    if value not in ("cpu", "gpu"):
        raise ValueError(f"must be 'cpu' or 'gpu', got {value!r}")
    return value


Positive = Annotated[float, BeforeValidator(_positive)]
OptionalPositive = Annotated[float | None, BeforeValidator(_optional_positive)]
Fraction = Annotated[float, BeforeValidator(_fraction)]
Text = Annotated[str, BeforeValidator(_text)]
Strings = Annotated[list[str], BeforeValidator(_strings)]
Count = Annotated[int | None, BeforeValidator(_count)]


# ------------------------------------------------------------------------------------------ file schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceSpec(_Strict):
    per_hour: Positive  # USD/hour for the whole instance as priced
    source: Text
    date: Text


class OwnedSpec(_Strict):
    purchase_price_usd: Positive
    lifetime_years: Positive
    power_cost_per_kwh: Positive
    pue: Annotated[float, BeforeValidator(_pue)]
    source: Text
    date: Text


class TflopsSpec(_Strict):
    """Dense peaks in TFLOPS; leave out a dtype the hardware has no figure for."""

    fp32: OptionalPositive = None
    tf32: OptionalPositive = None
    bf16: OptionalPositive = None
    fp16: OptionalPositive = None
    fp8: OptionalPositive = None

    def figures(self) -> dict[str, float]:
        return {key: value for key, value in self.model_dump().items() if value is not None}


class TierSpec(_Strict):
    """One tier as written in a YAML file. Field order matters: later validators read earlier fields."""

    kind: Annotated[str, BeforeValidator(_kind)]
    description: Text
    match: Strings = Field(default_factory=list)
    exclude: Strings = Field(default_factory=list)
    tflops: TflopsSpec
    memory_gb: Positive
    bandwidth_gb_s: Positive
    tdp_watts: Positive
    devices_per_instance: Count = 1
    vcpus: Count = Field(default=None, validate_default=True)
    isa: str | None = Field(default=None, validate_default=True)
    compute_efficiency: Fraction = 0.7
    memory_efficiency: Fraction = 0.7
    efficiency_source: Text = "default 0.7 (no measurement)"
    source: Text
    date: Text
    notes: str = ""
    owned: OwnedSpec | None = None
    price: PriceSpec | None = Field(default=None, validate_default=True)
    unverified: Strings = Field(default_factory=list)

    @field_validator("tflops")
    @classmethod
    def _some_figure(cls, value: TflopsSpec) -> TflopsSpec:
        if not value.figures():
            raise ValueError(f"must give at least one dtype's peak ({', '.join(FLOPS_KEYS)})")
        return value

    @field_validator("devices_per_instance")
    @classmethod
    def _devices_given(cls, value: int | None) -> int:
        if value is None:
            raise ValueError("must be a whole number >= 1, got None")
        return value

    @field_validator("vcpus")
    @classmethod
    def _vcpus_for_cpu(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None and info.data.get("kind") == "cpu":
            raise ValueError("required for a 'cpu' tier (the instance's vCPU count)")
        return value

    @field_validator("isa")
    @classmethod
    def _isa_for_cpu(cls, value: str | None, info: ValidationInfo) -> str | None:
        known = [name for name, _ in ISA_LEVELS]
        if info.data.get("kind") == "cpu" and value not in known:
            raise ValueError(f"a 'cpu' tier needs its ISA level, one of {', '.join(known)} (got {value!r})")
        if info.data.get("kind") == "gpu" and value is not None:
            raise ValueError("only 'cpu' tiers have an ISA level")
        return value

    @field_validator("price")
    @classmethod
    def _some_cost(cls, value: PriceSpec | None, info: ValidationInfo) -> PriceSpec | None:
        if value is None and info.data.get("owned") is None and "owned" not in _failed(info):
            raise ValueError("required unless an 'owned' block is given (per_hour, source, date)")
        return value

    @field_validator("unverified")
    @classmethod
    def _known_paths(cls, value: list[str], info: ValidationInfo) -> list[str]:
        allowed = {"memory_gb", "bandwidth_gb_s", "tdp_watts", "vcpus", "devices_per_instance"}
        allowed |= {"compute_efficiency", "memory_efficiency"}
        tflops = info.data.get("tflops")
        allowed |= {f"tflops.{key}" for key in (tflops.figures() if tflops else FLOPS_KEYS)}
        allowed |= {block for block in ("price", "owned") if info.data.get(block) is not None}
        unknown = [path for path in value if path not in allowed]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a figure of this tier (allowed: {', '.join(sorted(allowed))})")
        return value


def _failed(info: ValidationInfo) -> set[str]:
    # Fields that failed validation are absent from info.data; do not pile a second error on them.
    return set(TierSpec.model_fields) - set(info.data) - {info.field_name or ""}


# --------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict[str, dict[str, Any]]:
    """The `tiers` mapping of one file, structurally checked (each tier validated later)."""
    if not path.is_file():
        raise InputError(f"{path}: {why_not_found(path, 'tiers file')}")
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be a mapping with a 'tiers' key, got {type(data).__name__}")
    for key in data:
        # "x-..." keys hold YAML anchors shared by several tiers.
        if key != "tiers" and not (isinstance(key, str) and key.startswith("x-")):
            raise InputError(f"{path}: {key}: unknown key (allowed: tiers, and x-... keys for YAML anchors)")
    tiers = data.get("tiers")
    if not isinstance(tiers, dict) or not tiers:
        raise InputError(f"{path}: tiers: must be a mapping of tier name -> fields, got {tiers!r}")
    for name, fields in tiers.items():
        if not isinstance(name, str) or not _TIER_NAME.match(name):
            raise InputError(
                f"{path}: tiers.{name}: tier names must be lowercase letters, digits, '.', '-' or '_', "
                "starting with a letter or digit"
            )
        if not isinstance(fields, dict):
            raise InputError(f"{path}: tiers.{name}: must be a mapping of fields, got {fields!r}")
    return tiers


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key == "tflops" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            for dtype, figure in value.items():
                if figure is None:
                    merged[key].pop(dtype, None)
                else:
                    merged[key][dtype] = figure
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_file(path: Path, raw: dict[str, dict[str, Any]], tiers: dict[str, Tier]) -> None:
    for name, fields in _read_yaml(path).items():
        merged = _merge(raw[name], fields) if name in raw else fields
        tiers[name] = _validate(path, name, merged)
        raw[name] = merged


def _validate(path: Path, name: str, fields: dict[str, Any]) -> Tier:
    try:
        spec = TierSpec.model_validate(fields)
    except ValidationError as exc:
        raise InputError(_one_line(path, name, exc)) from None
    return _to_tier(name, spec, str(path))


def _one_line(path: Path, name: str, exc: ValidationError) -> str:
    """`file: tiers.NAME.field.path: message`, every problem on the one line (so none is found only on the next
    try); a replaced `price` or `owned` mapping says that it replaces the catalogue's whole."""
    problems, replaced = [], set()
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            message = f"unknown field{allowed_keys_hint(TierSpec, loc)}"
        elif error["type"] == "missing":
            message = "required field is missing"
            if loc[0] in ("price", "owned"):
                replaced.add(loc[0])
        elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a mapping of fields, got {error['input']!r}"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(('tiers', name, *loc))}: {message}")
    mappings = " or ".join(sorted(replaced))
    note = (
        f" (a {mappings} mapping in a tiers file replaces the catalogue's whole: give all its fields)"
        if replaced
        else ""
    )
    return f"{path}: {'; '.join(problems)}{note}"


def _to_tier(name: str, spec: TierSpec, origin: str) -> Tier:
    owned = None
    if spec.owned is not None:
        owned = OwnedCost(**spec.owned.model_dump())
    price = spec.price
    return Tier(
        name=name,
        kind=spec.kind,
        description=spec.description,
        match=tuple(spec.match),
        exclude=tuple(spec.exclude),
        peak_flops=MappingProxyType({key: float(value) * 1e12 for key, value in spec.tflops.figures().items()}),
        memory_bytes=float(spec.memory_gb) * 1e9,
        bandwidth_bytes_per_s=float(spec.bandwidth_gb_s) * 1e9,
        tdp_watts=float(spec.tdp_watts),
        devices_per_instance=int(spec.devices_per_instance or 1),
        vcpus=spec.vcpus,
        isa=spec.isa,
        price_per_hour=None if price is None else float(price.per_hour),
        price_source=None if price is None else price.source,
        price_date=None if price is None else price.date,
        owned=owned,
        compute_efficiency=float(spec.compute_efficiency),
        memory_efficiency=float(spec.memory_efficiency),
        efficiency_source=spec.efficiency_source,
        source=spec.source,
        date=spec.date,
        unverified=frozenset(spec.unverified),
        notes=spec.notes,
        origin=origin,
    )


@functools.cache
def _bundled() -> tuple[dict[str, dict[str, Any]], Mapping[str, Tier]]:
    raw: dict[str, dict[str, Any]] = {}
    tiers: dict[str, Tier] = {}
    _apply_file(TIERS_PATH, raw, tiers)
    return raw, MappingProxyType(tiers)


def _contains(haystack: str, needle: str) -> bool:
    # Word boundaries: "NVIDIA L4" must not match "NVIDIA L40S", nor "B200" match "GB200".
    pattern = rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])"
    return re.search(pattern, haystack, flags=re.IGNORECASE) is not None


def tier_for_machine(
    *, device: str, device_name: str, fingerprint: Fingerprint, tiers: Mapping[str, Tier]
) -> Tier | None:
    """The catalogue tier a machine is: a GPU matched by name; a CPU tier by fingerprint (the same ISA level,
    as many vCPUs as the machine has logical cores, and its match strings in the CPU model, where it has
    any). None when nothing fits: a wrong match would price and project with another CPU's figures."""
    if Device.parse(device).is_cuda:
        return match_tier(device_name, tiers)
    for tier in tiers.values():
        if tier.kind != "cpu" or tier.isa != fingerprint.isa or tier.vcpus != fingerprint.logical_cores:
            continue
        if not tier.match or tier.matches(fingerprint.cpu_model):
            return tier
    return None
