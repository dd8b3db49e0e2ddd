"""Amazon Reviews 2023 reader: a 5-core rating CSV plus, optionally, the item metadata JSONL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.errors import InputError
from bench.data.interactions import Catalogue, Interactions
from bench.data.tables import MIN_INTERACTIONS, Column, read_csv_table, require_users

_RATINGS = [
    Column("user_id", "str"),
    Column("parent_asin", "str"),
    Column("rating", "float"),
    Column("timestamp", "int"),
]

# Finds a metadata line's item before decoding it: the metadata files hold millions of items
# with long descriptions, and only the rated ones are worth a json.loads.
_ASIN = re.compile(r'"parent_asin"\s*:\s*"([^"\\]*)"')


def read_amazon(path: Path, *, max_users: int | None, max_history: int, items_path: Path | None = None) -> Interactions:
    """Read an Amazon Reviews 2023 CSV ``user_id,parent_asin,rating,timestamp`` (milliseconds).

    Same preprocessing as MovieLens: timestamp order (ties keep file order), users with fewer than
    3 ratings dropped, the first ``max_users`` users by id (string order), the latest
    ``max_history + 1`` ratings per user. The catalogue is every rated item, in ASIN order;
    titles and categories come from ``items_path`` (JSONL) when given, else the title is the ASIN.
    """
    path = Path(path)
    if max_history < 1:
        raise InputError(f"{path}: history_length must be >= 1, got {max_history}")
    _require_file(path, "Amazon ratings CSV")
    frame = read_csv_table(path, _RATINGS)

    # Sorted factorisation: codes follow id order, which max_users cuts.
    user_codes, user_keys = pd.factorize(frame["user_id"].to_numpy(dtype=object), sort=True)
    item_codes, item_keys = pd.factorize(frame["parent_asin"].to_numpy(dtype=object), sort=True)
    asins = [str(a) for a in item_keys]
    metadata = _read_items(Path(items_path), set(asins)) if items_path is not None else {}
    catalogue = Catalogue(
        item_ids=asins,
        titles=[metadata[a][0] if a in metadata else a for a in asins],
        genres=[list(metadata[a][1]) if a in metadata else [] for a in asins],
    )
    result = Interactions.from_events(
        source="amazon",
        catalogue=catalogue,
        user_ids=[str(u) for u in user_keys],
        user_codes=user_codes,
        item_codes=item_codes,
        ratings=frame["rating"].to_numpy(np.float32),
        # The 2023 release stores Unix time in milliseconds.
        timestamps=frame["timestamp"].to_numpy(np.int64) // 1000,
        max_users=max_users,
        max_history=max_history,
        min_interactions=MIN_INTERACTIONS,
    )
    result.stats["n_items_with_metadata"] = len(metadata)
    return require_users(path, result)


def _require_file(path: Path, what: str) -> None:
    if not path.exists():
        raise InputError(f"{path}: {what} does not exist")
    if not path.is_file():
        raise InputError(f"{path}: {what} is not a file")


def _read_items(path: Path, wanted: set[str]) -> dict[str, tuple[str, list[str]]]:
    """Title and categories of the ``wanted`` items from a metadata JSONL file."""
    _require_file(path, "Amazon item metadata JSONL")
    items: dict[str, tuple[str, list[str]]] = {}
    try:
        with path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                match = _ASIN.search(line)
                if match is not None and match.group(1) not in wanted:
                    continue
                asin, title, categories = _parse_item(path, line_number, line)
                if asin in wanted:
                    items.setdefault(asin, (title or asin, categories))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return items


def _parse_item(path: Path, line: int, text: str) -> tuple[str, str, list[str]]:
    where = f"{path}: line {line}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    asin = record.get("parent_asin")
    if not isinstance(asin, str) or not asin:
        raise InputError(f"{where}: field 'parent_asin' missing or not a non-empty string")
    title = record.get("title")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise InputError(f"{where}: field 'title' is not a string")
    categories = record.get("categories")
    if categories is None:
        categories = []
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise InputError(f"{where}: field 'categories' is not a list of strings")
    # Many 2023 categories leave `categories` empty; the top-level category still says something.
    main = record.get("main_category")
    if not categories and isinstance(main, str) and main:
        categories = [main]
    return asin, " ".join(title.split()), [c.strip() for c in categories if c.strip()]
