"""MovieLens readers: the 1M ``.dat`` release and the CSV releases (latest, 20M, 25M, 32M)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.errors import InputError
from bench.data.interactions import Catalogue, Interactions
from bench.data.tables import (
    MIN_INTERACTIONS,
    Column,
    check_value,
    csv_header,
    csv_rows,
    read_csv_table,
    read_text,
    require_users,
    typed_frame,
)

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

    return typed_frame(path, frame, _DAT_RATINGS, scan, error)


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
    header = csv_header(path)
    if header[:3] != _CSV_MOVIES:
        raise InputError(f"{path}: line 1: expected header 'movieId,title,genres', got {','.join(header)!r}")
    movies: dict[int, tuple[str, list[str]]] = {}
    for line, row in csv_rows(path):
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
