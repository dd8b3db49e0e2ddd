"""MovieLens readers: the 1M ``.dat`` release and the CSV releases (latest, 20M, 25M, 32M).

Also holds the table reader shared with the Amazon reader: pandas' C parser for speed, and,
only when that parser or the type checks find something wrong, a plain line-by-line scan that
names the first bad line, since pandas' own messages do not count lines the way editors do.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from bench.data.interactions import Catalogue, Interactions
from bench.errors import InputError

MIN_INTERACTIONS = 3  # two history items plus the held-out one

Kind = Literal["int", "float", "str"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind


# --------------------------------------------------------------------------------------------
# Shared table reading
# --------------------------------------------------------------------------------------------


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


def _typed_frame(
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
    header = _csv_header(path)
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
        for line, row in _csv_rows(path):
            if len(row) != len(header):
                raise InputError(f"{path}: line {line}: expected {len(header)} fields, got {len(row)}")
            for column in columns:
                check_value(path, line, column, row[index[column.name]])

    return _typed_frame(path, frame, columns, scan, error)


def _csv_header(path: Path) -> list[str]:
    for _, row in _csv_rows(path, header=True):
        return [name.strip() for name in row]
    raise InputError(f"{path}: file is empty (expected a header line)")


def _csv_rows(path: Path, *, header: bool = False) -> Iterator[tuple[int, list[str]]]:
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


# --------------------------------------------------------------------------------------------
# MovieLens
# --------------------------------------------------------------------------------------------

_DAT_RATINGS = [
    Column("UserID", "int"),
    Column("MovieID", "int"),
    Column("Rating", "float"),
    Column("Timestamp", "int"),
]
_CSV_RATINGS = [
    Column("userId", "int"),
    Column("movieId", "int"),
    Column("rating", "float"),
    Column("timestamp", "int"),
]
_CSV_MOVIES = ["movieId", "title", "genres"]
_NO_GENRES = "(no genres listed)"  # the CSV releases' marker for an empty genre list


def read_movielens(path: Path, *, max_users: int | None, max_history: int) -> Interactions:
    """Read a MovieLens directory (ratings.dat + movies.dat, or ratings.csv + movies.csv).

    Histories are in timestamp order (ties keep file order); users with fewer than 3 ratings are
    dropped; ``max_users`` keeps the first users by numeric id; each user keeps the latest
    ``max_history + 1`` ratings. The catalogue is every rated movie, in id order, titled from
    the movies file (the id itself for a movie missing there).
    """
    path = Path(path)
    if max_history < 1:
        raise InputError(f"{path}: history_length must be >= 1, got {max_history}")
    if not path.exists():
        raise InputError(f"{path}: MovieLens directory does not exist")
    if not path.is_dir():
        raise InputError(f"{path}: not a directory (MovieLens expects the folder with ratings and movies)")
    if (path / "ratings.dat").is_file() and (path / "movies.dat").is_file():
        ratings = _read_ratings_dat(path / "ratings.dat")
        movies = _read_movies_dat(path / "movies.dat")
        ratings_path = path / "ratings.dat"
    elif (path / "ratings.csv").is_file() and (path / "movies.csv").is_file():
        ratings_path = path / "ratings.csv"
        ratings = read_csv_table(ratings_path, _CSV_RATINGS).set_axis([c.name for c in _DAT_RATINGS], axis=1)
        movies = _read_movies_csv(path / "movies.csv")
    else:
        present = sorted(p.name for p in path.iterdir() if p.suffix in {".dat", ".csv"})
        found = f"found {', '.join(present)}" if present else "found neither"
        raise InputError(
            f"{path}: expected ratings.dat + movies.dat (MovieLens 1M) "
            f"or ratings.csv + movies.csv (CSV releases); {found}"
        )
    return require_users(ratings_path, _to_interactions(ratings, movies, max_users, max_history))


def _to_interactions(
    ratings: pd.DataFrame,
    movies: dict[int, tuple[str, list[str]]],
    max_users: int | None,
    max_history: int,
) -> Interactions:
    # np.unique sorts, so codes follow numeric id order (user 2 before user 10).
    user_keys, user_codes = np.unique(ratings["UserID"].to_numpy(np.int64), return_inverse=True)
    movie_keys, item_codes = np.unique(ratings["MovieID"].to_numpy(np.int64), return_inverse=True)
    known = [movies.get(int(m)) for m in movie_keys]
    catalogue = Catalogue(
        item_ids=[str(m) for m in movie_keys.tolist()],
        titles=[entry[0] if entry else str(m) for entry, m in zip(known, movie_keys.tolist(), strict=True)],
        genres=[list(entry[1]) if entry else [] for entry in known],
    )
    return Interactions.from_events(
        source="movielens",
        catalogue=catalogue,
        user_ids=[str(u) for u in user_keys.tolist()],
        user_codes=user_codes,
        item_codes=item_codes,
        ratings=ratings["Rating"].to_numpy(np.float32),
        timestamps=ratings["Timestamp"].to_numpy(np.int64),
        max_users=max_users,
        max_history=max_history,
        min_interactions=MIN_INTERACTIONS,
    )


def _read_ratings_dat(path: Path) -> pd.DataFrame:
    """``UserID::MovieID::Rating::Timestamp`` lines; pandas' C parser needs a one-char separator,
    and its python engine (which takes "::") is about 20 times slower on the 1M ratings."""
    text = read_text(path, "latin-1")
    if not text.strip():
        raise InputError(f"{path}: file is empty")
    names = [c.name for c in _DAT_RATINGS]
    frame: pd.DataFrame | None = None
    error = ""
    try:
        # \x1f (the ASCII unit separator) never occurs in MovieLens text.
        frame = pd.read_csv(
            io.StringIO(text.replace("::", "\x1f")),
            sep="\x1f",
            header=None,
            names=names,
            index_col=False,
            quoting=csv.QUOTE_NONE,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        error = str(exc).strip()

    def scan() -> None:
        for line, fields in _dat_lines(text):
            if len(fields) != len(names):
                raise InputError(
                    f"{path}: line {line}: expected {len(names)} fields '{'::'.join(names)}', got {len(fields)}"
                )
            for column, value in zip(_DAT_RATINGS, fields, strict=True):
                check_value(path, line, column, value.strip())

    return _typed_frame(path, frame, _DAT_RATINGS, scan, error)


def _dat_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    # split("\n"), not splitlines(): latin-1 text may hold \x85 or \x1c, which splitlines breaks on.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if line.strip():
            yield number, line.split("::")


def _read_movies_dat(path: Path) -> dict[int, tuple[str, list[str]]]:
    """``MovieID::Title::Genres`` lines, latin-1; genres ``|``-separated."""
    movies: dict[int, tuple[str, list[str]]] = {}
    for line, fields in _dat_lines(read_text(path, "latin-1")):
        if len(fields) < 3:
            raise InputError(f"{path}: line {line}: expected 3 fields 'MovieID::Title::Genres', got {len(fields)}")
        # A title could itself hold "::"; the id is first and the genres last, so rejoin the middle.
        movie_id, title, genres = fields[0].strip(), "::".join(fields[1:-1]).strip(), fields[-1].strip()
        check_value(path, line, Column("MovieID", "int"), movie_id)
        movies.setdefault(int(float(movie_id)), (title or movie_id, _split_genres(genres)))
    return movies


def _read_movies_csv(path: Path) -> dict[int, tuple[str, list[str]]]:
    """``movieId,title,genres`` with a header; titles may be quoted and hold commas."""
    header = _csv_header(path)
    if header[:3] != _CSV_MOVIES:
        raise InputError(f"{path}: line 1: expected header 'movieId,title,genres', got {','.join(header)!r}")
    movies: dict[int, tuple[str, list[str]]] = {}
    for line, row in _csv_rows(path):
        if len(row) != len(header):
            raise InputError(f"{path}: line {line}: expected {len(header)} fields, got {len(row)}")
        movie_id, title, genres = (field.strip() for field in row[:3])
        check_value(path, line, Column("movieId", "int"), movie_id)
        movies.setdefault(int(float(movie_id)), (title or movie_id, _split_genres(genres)))
    return movies


def _split_genres(field: str) -> list[str]:
    if field in ("", _NO_GENRES):
        return []
    return [g.strip() for g in field.split("|") if g.strip()]
