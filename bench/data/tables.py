"""Table reading shared by the dataset readers: pandas' C parser for speed and, only when that parser or
the type checks find something wrong, a plain line-by-line scan that names the first bad line, since pandas'
own messages do not count lines the way editors do."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from bench.core.errors import InputError
from bench.data.interactions import Interactions

MIN_INTERACTIONS = 3  # two history items plus the held-out one

Kind = Literal["int", "float", "str"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


def check_value(path: Path, line: int, column: Column, value: str) -> None:
    """Raise InputError naming the file, line and field if ``value`` is not a ``column.kind``."""
    where = f"{path}: line {line}: field '{column.name}'"
    if column.kind == "str":
        if value == "":
            raise InputError(f"{where} is empty")
        return
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not a number") from None
    if not np.isfinite(number):
        raise InputError(f"{where}: {value!r} is not a finite number")
    if column.kind == "int" and not number.is_integer():
        raise InputError(f"{where}: {value!r} is not an integer")


def _column_ok(series: pd.Series, kind: Kind) -> bool:
    """Whether pandas parsed a whole column as ``kind`` with no missing values."""
    if kind == "str":
        return not series.isna().any()
    if series.dtype.kind not in "iuf":
        return False  # some value was not numeric, so pandas fell back to strings
    values = series.to_numpy()
    if not np.isfinite(values).all():
        return False
    return kind == "float" or series.dtype.kind in "iu" or bool((values == np.round(values)).all())


def typed_frame(
    path: Path, frame: pd.DataFrame | None, columns: list[Column], scan: Callable[[], None], error: str
) -> pd.DataFrame:
    """Return ``frame`` if every column parsed cleanly, else let ``scan`` raise the line error."""
    if frame is not None and all(_column_ok(frame[c.name], c.kind) for c in columns):
        return frame
    scan()
    # The scan found nothing pandas disliked: report pandas' own words rather than guess.
    raise InputError(f"{path}: could not parse the file: {error or 'unexpected values'}")


def read_csv_table(path: Path, columns: list[Column]) -> pd.DataFrame:
    """Read a comma-separated file with a header naming (at least) ``columns``; extra columns
    are ignored. Numeric columns come back as int64/float64, ``str`` columns as strings."""
    header = csv_header(path)
    missing = [c.name for c in columns if c.name not in header]
    if missing:
        raise InputError(
            f"{path}: line 1: header lacks {', '.join(repr(m) for m in missing)}; "
            f"expected columns {','.join(c.name for c in columns)}, got {','.join(header)}"
        )
    wanted = {c.name for c in columns}
    frame: pd.DataFrame | None = None
    error = ""
    try:
        frame = pd.read_csv(
            path,
            # Without usecols pandas rejects rows with surplus fields; with it, it drops them
            # silently, so only use it when the header really has columns we do not need.
            usecols=(lambda name: name.strip() in wanted) if len(header) > len(columns) else None,
            dtype={c.name: str for c in columns if c.kind == "str"},
            keep_default_na=False,  # an id such as "NA" is an id, not a missing value
            na_values=[""],
            index_col=False,
            encoding="utf-8-sig",
        )
        frame.columns = [str(name).strip() for name in frame.columns]
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if frame is not None and frame.empty:
        raise InputError(f"{path}: no data lines after the header")

    def scan() -> None:
        index = {name: i for i, name in enumerate(header)}
        for line, row in csv_rows(path):
            if len(row) != len(header):
                raise InputError(f"{path}: line {line}: expected {len(header)} fields, got {len(row)}")
            for column in columns:
                check_value(path, line, column, row[index[column.name]])

    return typed_frame(path, frame, columns, scan, error)


def csv_header(path: Path) -> list[str]:
    for _, row in csv_rows(path, header=True):
        return [name.strip() for name in row]
    raise InputError(f"{path}: file is empty (expected a header line)")


def csv_rows(path: Path, *, header: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each non-blank record; the header only if ``header``."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            first = True
            start = 1
            for row in reader:
                # line_num is the line a record *ends* on; report where it starts.
                line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if first:
                    first = False
                    if header:
                        yield line, row
                        return
                    continue
                yield line, row
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}: line {reader.line_num}: {exc}") from None


def read_text(path: Path, encoding: str) -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not {encoding} text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def require_users(path: Path, result: Interactions) -> Interactions:
    if not result.users:
        raise InputError(f"{path}: no user has at least {MIN_INTERACTIONS} ratings")
    return result
