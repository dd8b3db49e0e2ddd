"""MovieLens and Amazon readers, on small files written per test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bench.core.errors import InputError
from bench.data import load_interactions
from bench.data.amazon import read_amazon
from bench.data.interactions import Interactions
from bench.data.movielens import read_movielens

# (user, movie, rating, timestamp). User 1 rates in an order unlike the file order; user 2 has
# two ratings only (dropped); user 10 sorts after user 3 numerically but before it as text.
EVENTS = [
    (1, 30, 4, 300),
    (1, 10, 5, 100),
    (1, 20, 3, 200),
    (1, 40, 2, 400),
    (2, 10, 1, 50),
    (2, 20, 2, 60),
    (3, 20, 5, 500),
    (3, 10, 4, 500),  # same second as the line above: file order decides
    (3, 99, 3, 700),  # movie 99 is not in the movies file
    (10, 40, 1, 10),
    (10, 30, 2, 20),
    (10, 10, 3, 30),
]
MOVIES = {10: "Amélie (2001)", 20: "Toy Story (1995)", 30: "Heat (1995)", 40: "Alien (1979)"}
GENRES = {10: "Comedy|Romance", 20: "Animation|Children's|Comedy", 30: "Action|Crime", 40: "Horror|Sci-Fi"}


def write_ml_dat(folder: Path, events: list[tuple[int, int, int, int]] = EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}::{m}::{r}::{t}" for u, m, r, t in events]
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="latin-1")
    movies = [f"{m}::{title}::{GENRES[m]}" for m, title in MOVIES.items()]
    (folder / "movies.dat").write_text("\n".join(movies) + "\n", encoding="latin-1")
    return folder


def write_ml_csv(folder: Path, events: list[tuple[int, int, int, int]] = EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{m},{r}.0,{t}" for u, m, r, t in events]
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    movies = ["movieId,title,genres"]
    for m, title in MOVIES.items():
        movies.append(f'{m},"{title.replace("Heat", "Heat, The")}",{GENRES[m]}')
    (folder / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    return folder


def history(data: Interactions, user_id: str) -> tuple[list[str], str]:
    (user,) = [u for u in data.users if u.user_id == user_id]
    ids = data.catalogue.item_ids
    return [ids[i] for i in user.items.tolist()], ids[user.held_out_item]


def check_movielens(data: Interactions) -> None:
    assert data.source == "movielens"
    # User 2 (two ratings) is dropped; the rest in numeric id order.
    assert [u.user_id for u in data.users] == ["1", "3", "10"]
    assert history(data, "1") == (["10", "20", "30"], "40")
    assert history(data, "3") == (["20", "10"], "99")  # tie at t=500 keeps file order
    assert history(data, "10") == (["40", "30"], "10")
    (user1,) = [u for u in data.users if u.user_id == "1"]
    assert user1.ratings.tolist() == [5.0, 3.0, 4.0] and user1.held_out_rating == 2.0
    assert user1.timestamps.tolist() == [100, 200, 300]
    assert user1.items.dtype == np.int64 and user1.ratings.dtype == np.float32
    cat = data.catalogue
    # Every rated movie (user 2's too), in id order; the unknown one titled by its id.
    assert cat.item_ids == ["10", "20", "30", "40", "99"]
    assert cat.titles[cat.item_ids.index("99")] == "99"
    assert cat.genres[cat.item_ids.index("99")] == []
    assert cat.genres[cat.item_ids.index("20")] == ["Animation", "Children's", "Comedy"]
    assert data.stats["n_interactions"] == 10
    assert data.stats["history_len_max"] == 3


def test_movielens_dat(tmp_path: Path) -> None:
    data = read_movielens(write_ml_dat(tmp_path / "ml-1m"), max_users=None, max_history=10)
    check_movielens(data)
    assert data.catalogue.titles[0] == "Amélie (2001)"  # decoded as latin-1
    assert (tmp_path / "ml-1m" / "movies.dat").read_bytes().count(b"\xe9") == 1


def test_movielens_csv(tmp_path: Path) -> None:
    data = read_movielens(write_ml_csv(tmp_path / "ml-latest"), max_users=None, max_history=10)
    check_movielens(data)
    assert data.catalogue.titles[2] == "Heat, The (1995)"  # quoted, with a comma
    assert data.catalogue.titles[0] == "Amélie (2001)"


def test_shuffled_file_is_sorted_by_time(tmp_path: Path) -> None:
    # No timestamp ties here, so any file order must give the same histories.
    events = [e for e in EVENTS if e[:2] != (3, 10)]
    reference = read_movielens(write_ml_dat(tmp_path / "a", events), max_users=None, max_history=10)
    shuffled = events[:]
    random.Random(0).shuffle(shuffled)
    assert shuffled != events
    data = read_movielens(write_ml_dat(tmp_path / "b", shuffled), max_users=None, max_history=10)
    for a, b in zip(reference.users, data.users, strict=True):
        assert a.items.tolist() == b.items.tolist()
        assert np.all(np.diff(b.timestamps) >= 0)
        assert a.held_out_item == b.held_out_item


def test_max_users_and_max_history(tmp_path: Path) -> None:
    folder = write_ml_dat(tmp_path / "ml")
    data = read_movielens(folder, max_users=2, max_history=2)
    assert [u.user_id for u in data.users] == ["1", "3"]
    # The most recent 3 ratings: 20, 30 as history, 40 held out.
    assert history(data, "1") == (["20", "30"], "40")
    assert data.stats["history_len_max"] == 2


def test_dispatcher_reads_files(tmp_path: Path) -> None:
    data = load_interactions(
        dataset="movielens",
        path=write_ml_dat(tmp_path / "ml"),
        items_path=None,
        n_users=1,
        n_items=999,  # ignored: the file decides
        max_history=10,
        seed=0,
    )
    assert [u.user_id for u in data.users] == ["1"]
    assert data.catalogue.n_items == 5


# --- MovieLens errors ------------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no-such-dir.*does not exist"):
        read_movielens(tmp_path / "no-such-dir", max_users=None, max_history=5)


def test_path_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "ratings.dat"
    target.write_text("1::1::5::1\n")
    with pytest.raises(InputError, match=r"ratings\.dat.*not a directory"):
        read_movielens(target, max_users=None, max_history=5)


def test_no_file_pair(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1::5::1\n")
    with pytest.raises(InputError, match=r"half.*ratings\.dat \+ movies\.dat.*found ratings\.dat") as info:
        read_movielens(folder, max_users=None, max_history=5)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1::10::5", "ratings.dat: line 3: expected 4 fields 'UserID::MovieID::Rating::Timestamp', got 3"),
        ("1::10::5::100::7", "ratings.dat: line 3: expected 4 fields"),
        ("1::10::five::100", "ratings.dat: line 3: field 'Rating': 'five' is not a number"),
        ("x::10::5::100", "ratings.dat: line 3: field 'UserID': 'x' is not a number"),
        ("1::10::5::1.5", "ratings.dat: line 3: field 'Timestamp': '1.5' is not an integer"),
    ],
)
def test_malformed_dat_line(tmp_path: Path, line: str, message: str) -> None:
    folder = write_ml_dat(tmp_path / "ml")
    lines = (folder / "ratings.dat").read_text(encoding="latin-1").splitlines()
    lines[2] = line
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(InputError) as info:
        read_movielens(folder, max_users=None, max_history=5)
    assert message in str(info.value)
    assert str(folder / "ratings.dat") in str(info.value)


def test_malformed_movies_dat(tmp_path: Path) -> None:
    folder = write_ml_dat(tmp_path / "ml")
    with (folder / "movies.dat").open("a", encoding="latin-1") as handle:
        handle.write("77 Broken line without separators\n")
    with pytest.raises(InputError, match=r"movies\.dat: line 5: expected 3 fields"):
        read_movielens(folder, max_users=None, max_history=5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,10,4.5", "ratings.csv: line 4: expected 4 fields, got 3"),
        ("1,10,4.5,100,9", "ratings.csv: line 4: expected 4 fields, got 5"),
        ("1,10,good,100", "ratings.csv: line 4: field 'rating': 'good' is not a number"),
    ],
)
def test_malformed_csv_line(tmp_path: Path, line: str, message: str) -> None:
    folder = write_ml_csv(tmp_path / "ml")
    lines = (folder / "ratings.csv").read_text().splitlines()
    lines[3] = line
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_movielens(folder, max_users=None, max_history=5)
    assert message in str(info.value)


def test_csv_bad_header(tmp_path: Path) -> None:
    folder = write_ml_csv(tmp_path / "ml")
    text = (folder / "ratings.csv").read_text().replace("rating,", "stars,", 1)
    (folder / "ratings.csv").write_text(text)
    with pytest.raises(InputError, match=r"ratings\.csv: line 1: header lacks 'rating'"):
        read_movielens(folder, max_users=None, max_history=5)


def test_no_user_long_enough(tmp_path: Path) -> None:
    folder = write_ml_dat(tmp_path / "ml", [(1, 10, 5, 1), (1, 20, 4, 2), (2, 10, 3, 3)])
    with pytest.raises(InputError, match=r"ratings\.dat: no user has at least 3 ratings"):
        read_movielens(folder, max_users=None, max_history=5)


# --- Amazon ----------------------------------------------------------------------------------

AMAZON = [
    # user, item, rating, timestamp in ms
    ("AEZZZ", "B0C", 5.0, 1_600_000_300_123),
    ("AEZZZ", "B0A", 4.0, 1_600_000_100_999),
    ("AEZZZ", "B0B", 3.0, 1_600_000_200_000),
    ("AB", "B0A", 2.0, 1_500_000_000_000),
    ("AB", "B0D", 1.0, 1_500_000_002_000),
    ("AB", "B0B", 5.0, 1_500_000_001_000),
    ("AC", "B0A", 4.0, 1_500_000_000_000),  # two ratings only: dropped
    ("AC", "B0C", 4.0, 1_500_000_001_000),
]


def write_amazon(folder: Path, rows: list[tuple[str, str, float, int]] = AMAZON) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id,parent_asin,rating,timestamp"] + [f"{u},{i},{r},{t}" for u, i, r, t in rows]
    path = folder / "Books.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_items(folder: Path) -> Path:
    path = folder / "meta_Books.jsonl"
    records = [
        {"parent_asin": "B0A", "title": "Dune, Deluxe Edition", "categories": ["Books", "Science Fiction"]},
        {"parent_asin": "B0B", "title": "Mrs. Dalloway", "main_category": "Books", "categories": []},
        {"parent_asin": "B0Z", "title": "Never rated"},
        {"parent_asin": "B0C", "title": "Café Stories"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_amazon_csv_with_metadata(tmp_path: Path) -> None:
    ratings = write_amazon(tmp_path)
    data = read_amazon(ratings, max_users=None, max_history=10, items_path=write_items(tmp_path))
    assert data.source == "amazon"
    assert [u.user_id for u in data.users] == ["AB", "AEZZZ"]  # string id order; AC dropped
    assert history(data, "AEZZZ") == (["B0A", "B0B"], "B0C")
    assert history(data, "AB") == (["B0A", "B0B"], "B0D")
    (user,) = [u for u in data.users if u.user_id == "AEZZZ"]
    assert user.timestamps.tolist() == [1_600_000_100, 1_600_000_200]  # ms -> s
    assert user.held_out_rating == 5.0
    cat = data.catalogue
    assert cat.item_ids == ["B0A", "B0B", "B0C", "B0D"]  # B0Z was never rated
    assert cat.titles == ["Dune, Deluxe Edition", "Mrs. Dalloway", "Café Stories", "B0D"]
    assert cat.genres[0] == ["Books", "Science Fiction"]
    assert cat.genres[1] == ["Books"]  # empty categories fall back to main_category
    assert cat.genres[3] == []


def test_amazon_without_metadata_and_limits(tmp_path: Path) -> None:
    data = read_amazon(write_amazon(tmp_path), max_users=1, max_history=1)
    assert [u.user_id for u in data.users] == ["AB"]
    assert data.catalogue.titles == data.catalogue.item_ids
    assert history(data, "AB") == (["B0B"], "B0D")


def test_amazon_shuffled_rows(tmp_path: Path) -> None:
    rows = AMAZON[:]
    random.Random(1).shuffle(rows)
    data = read_amazon(write_amazon(tmp_path, rows), max_users=None, max_history=10)
    assert history(data, "AEZZZ") == (["B0A", "B0B"], "B0C")


def test_amazon_dispatcher(tmp_path: Path) -> None:
    data = load_interactions(
        dataset="amazon",
        path=write_amazon(tmp_path),
        items_path=write_items(tmp_path),
        n_users=10,
        n_items=1,
        max_history=10,
        seed=0,
    )
    assert data.n_users == 2 and data.catalogue.titles[0] == "Dune, Deluxe Edition"


def test_amazon_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"Books\.csv: Amazon ratings CSV does not exist"):
        read_amazon(tmp_path / "Books.csv", max_users=None, max_history=5)
    ratings = write_amazon(tmp_path)
    with pytest.raises(InputError, match=r"meta\.jsonl: Amazon item metadata JSONL does not exist"):
        read_amazon(ratings, max_users=None, max_history=5, items_path=tmp_path / "meta.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("AB,B0A,bad,1500000000000", "Books.csv: line 3: field 'rating': 'bad' is not a number"),
        ("AB,B0A,5.0", "Books.csv: line 3: expected 4 fields, got 3"),
        (",B0A,5.0,1500000000000", "Books.csv: line 3: field 'user_id' is empty"),
        ("AB,B0A,5.0,soon", "Books.csv: line 3: field 'timestamp': 'soon' is not a number"),
    ],
)
def test_amazon_malformed_rows(tmp_path: Path, line: str, message: str) -> None:
    path = write_amazon(tmp_path)
    lines = path.read_text().splitlines()
    lines[2] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_amazon(path, max_users=None, max_history=5)
    assert message in str(info.value)


def test_amazon_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text("user,item,rating,timestamp\nA,B,5,1\n")
    with pytest.raises(InputError, match=r"reviews\.csv: line 1: header lacks 'user_id', 'parent_asin'"):
        read_amazon(path, max_users=None, max_history=5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"parent_asin": "B0A", "title": ', "meta_Books.jsonl: line 2: invalid JSON"),
        ('{"title": "no asin"}', "meta_Books.jsonl: line 2: field 'parent_asin' missing"),
        ('{"parent_asin": "B0A", "title": 7}', "meta_Books.jsonl: line 2: field 'title' is not a string"),
        ('{"parent_asin": "B0A", "categories": "Books"}', "line 2: field 'categories' is not a list"),
        ("[1, 2]", "meta_Books.jsonl: line 2: expected a JSON object"),
    ],
)
def test_amazon_malformed_metadata(tmp_path: Path, line: str, message: str) -> None:
    items = write_items(tmp_path)
    lines = items.read_text(encoding="utf-8").splitlines()
    lines.insert(1, line)
    items.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_amazon(write_amazon(tmp_path), max_users=None, max_history=5, items_path=items)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_rating_files(tmp_path: Path) -> None:
    folder = write_ml_dat(tmp_path / "dat")
    (folder / "ratings.dat").write_text("\n")
    with pytest.raises(InputError, match=r"ratings\.dat: file is empty"):
        read_movielens(folder, max_users=None, max_history=5)
    folder = write_ml_csv(tmp_path / "csv")
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(InputError, match=r"ratings\.csv: no data lines after the header"):
        read_movielens(folder, max_users=None, max_history=5)


def test_amazon_extra_columns_bom_and_spaced_header(tmp_path: Path) -> None:
    # The timestamp-split 2023 files add a `history` column; spreadsheets add a byte-order mark.
    lines = ["\ufeffuser_id, parent_asin,rating,timestamp,history"]
    lines += [f'{u},{i},{r},{t},"B0X B0Y"' for u, i, r, t in AMAZON]
    path = tmp_path / "split.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_amazon(path, max_users=None, max_history=10)
    assert history(data, "AEZZZ") == (["B0A", "B0B"], "B0C")
