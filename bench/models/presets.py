"""The catalogue of real architectures (presets.yaml), as Architecture objects."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from bench.core.yaml_files import read_yaml
from bench.models.architecture import Architecture

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
_METADATA_KEYS = ("description", "source", "params", "packaged")


@cache
def _raw_presets() -> dict[str, dict]:
    return read_yaml(PRESETS_FILE)["presets"]


def preset_names() -> list[str]:
    return list(_raw_presets())


def get_preset(name: str) -> Architecture:
    raw = _raw_presets()[name]
    return Architecture(**{k: v for k, v in raw.items() if k not in _METADATA_KEYS})


def preset_metadata(name: str) -> dict:
    """Published parameter total and source of a preset (for the result file and tests)."""
    return {k: v for k, v in _raw_presets()[name].items() if k in _METADATA_KEYS}


def packaged_weights(name: str) -> dict | None:
    """Where a preset's pretrained weights ship (package, file, source), or None: most presets have shapes only."""
    return _raw_presets()[name].get("packaged")
