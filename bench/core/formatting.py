"""Numbers and units as people read them, in one place for the console, the report and comparisons.

Every formatter takes raw SI values (seconds, bytes, joules, FLOP, USD) and returns text; a missing or
non-finite value prints as MISSING, never as "nan" or a traceback.
"""

from __future__ import annotations

import math

MISSING = "n/a"
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_COUNT = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def format_number(value: float | None, *, significant: int = 3) -> str:
    """`significant` figures, no decimals (with thousands separators) from 10**significant up, never
    scientific notation above 1: 0.000123, 0.105, 1.97, 37.7, 106, 1,998 (4 figures: 106.1, 1,998)."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (significant - 1):
        return f"{value:,.0f}"
    return f"{value:.{significant}g}"


def format_count(value: float | None) -> str:
    """Large counts with a suffix: 4.87M, 494M, 1.5B."""
    if value is None or not math.isfinite(value):
        return MISSING
    factor, suffix = next(((f, s) for f, s in _COUNT if abs(value) >= f), (1.0, ""))
    return f"{value / factor:.3g}{suffix}"


def format_si(value: float | None, unit: str, *, significant: int = 3) -> str:
    """A value with an SI prefix: 15 GFLOP, 221 GFLOP/s (4 figures: 14.96 GFLOP)."""
    if value is None or not math.isfinite(value):
        return MISSING
    factor, prefix = next(((f, p) for f, p in _SI if abs(value) >= f), (1.0, ""))
    return f"{format_number(value / factor, significant=significant)} {prefix}{unit}"


_DECIMAL_BYTES = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB"), (1.0, "B"))
_BINARY_BYTES = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1.0, "B"))
_JOULES = ((1e3, "kJ"), (1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ"))


def _scaled(value: float | None, steps: tuple[tuple[float, str], ...]) -> str:
    """`value` in the largest unit of `steps` (factor, suffix; largest first) it reaches, else the smallest."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == 0:
        return f"0 {steps[-1][1]}"
    factor, suffix = next(((f, s) for f, s in steps if abs(value) >= f), steps[-1])
    return f"{format_number(value / factor)} {suffix}"


def format_bytes(value: float | None, *, binary: bool = False) -> str:
    """Decimal (kB, MB, GB: capacities as vendors state them) or binary (KiB, MiB, GiB: what the OS reports)."""
    return _scaled(value, _BINARY_BYTES if binary else _DECIMAL_BYTES)


def format_ms(seconds: float | None) -> str:
    """Seconds shown as milliseconds, without the unit (for columns headed "ms")."""
    return format_number(None if seconds is None else seconds * 1e3)


def format_usd(value: float | None) -> str:
    """$1,234 / $12.34 / $0.0123: cents for dollar amounts, three significant figures below a dollar."""
    if value is None or not math.isfinite(value):
        return MISSING
    if value == 0:
        return "$0"
    if abs(value) >= 1000:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    digits = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:.{digits}f}"


def format_energy(joules: float | None) -> str:
    return _scaled(joules, _JOULES)


def format_percent(fraction: float | None, *, signed: bool = False) -> str:
    """0.123 -> "12.3%" ("+12.3%" with `signed`)."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    return f"{fraction:+.1%}" if signed else f"{fraction:.1%}"


def to_ms(seconds: float | None) -> float | None:
    """Seconds -> milliseconds as a number (for tables and CSV columns headed ms)."""
    return None if seconds is None else seconds * 1e3
