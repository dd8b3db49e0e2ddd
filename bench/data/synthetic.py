"""A seeded synthetic dataset with MovieLens-like statistics.

The point is realistic *shape*, so that costs measured on it transfer to real data: a Zipf item
popularity (a few items dominate candidate sets and caches), long-tailed history lengths (prompt
lengths vary the way they do in practice), titles of realistic token length, and ratings skewed
towards 3-4 stars the way MovieLens ratings are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from bench.core.errors import InputError
from bench.data.interactions import Catalogue, Interactions

# The 18 MovieLens genres, with their ML-1M movie counts as sampling weights (Drama and Comedy
# dominate, Film-Noir is rare).
GENRE_WEIGHTS: dict[str, int] = {
    "Drama": 1603,
    "Comedy": 1200,
    "Action": 503,
    "Thriller": 492,
    "Romance": 471,
    "Horror": 343,
    "Adventure": 283,
    "Sci-Fi": 276,
    "Children's": 251,
    "Crime": 211,
    "War": 143,
    "Documentary": 127,
    "Musical": 114,
    "Mystery": 106,
    "Animation": 105,
    "Fantasy": 68,
    "Western": 68,
    "Film-Noir": 44,
}
GENRES: list[str] = list(GENRE_WEIGHTS)

# ML-1M's share of 1..5 star ratings.
RATING_PROBS = np.array([0.06, 0.11, 0.26, 0.35, 0.22])

# Sigma of the log history length. With the 3-interaction floor and the cap below, 1.1 gives a
# median history of about 0.6 x the mean, as in MovieLens (ML-1M: median 96, mean 165 ratings
# per user).
HISTORY_SIGMA = 1.1
MIN_INTERACTIONS = 3  # two history items plus the held-out one

# Ratings started on 2000-01-01 and span three years, like ML-1M.
T = TypeVar("T")  # a template slot: a fixed word, or what picks the words it may take

EPOCH_START = 946_684_800
START_SPAN_S = 3 * 365 * 86_400


def _words(text: str) -> list[str]:
    return text.split()


_ADJECTIVES = _words(
    "Silent Broken Golden Hidden Last Crimson Lonely Wild Dark Bright Frozen Burning Lost Secret "
    "Endless Distant Quiet Savage Gentle Hollow Midnight Electric Velvet Iron Little Forgotten "
    "Restless Shattered Scarlet Wandering Bitter Sweet Final Eternal Paper Glass Stolen Fading "
    "Northern Crooked Sacred Wicked Falling Rising Twisted Pale Black White Blue Red Green"
)
_NOUNS = _words(
    "River Ashes Crown Garden Shadow Storm Summer Winter Mirror Harbor Kingdom Road Heart Night "
    "Ocean Empire Island Stranger Promise Dream Fire Moon Sun Letter Journey Season Tower Forest "
    "City Secret Song Dance Witness Highway Horizon Bridge Mountain Desert Angel Ghost Hunter "
    "Soldier Doctor Detective Thief Wolf Raven Sparrow Lion Tiger Violin Engine Lantern Compass "
    "Frontier Circus Carnival Voyage Revenge Silence Thunder Glory Honor Legacy Memory Echo"
)
_PLURALS = _words(
    "Ashes Shadows Dreams Stars Waves Ghosts Wolves Kings Lovers Strangers Thieves Angels Bells "
    "Roses Tides Years Echoes Secrets Lies Promises Rivers Storms Mirrors Fires Hearts Soldiers"
)
_NAMES = _words(
    "Anna Marco Lucy Victor Elena Jack Sofia Oscar Nina Felix Clara Hugo Iris Leo Maya Otto Rosa "
    "Sam Vera Max Ada Theo Lena Omar Greta Paul Ines Ravi Mia Tom"
)
_PLACES = _words(
    "Paris Tokyo Brooklyn Vienna Havana Cairo Berlin Lisbon Memphis Texas Alaska Bombay Rome "
    "Casablanca Sicily Montana Shanghai Dublin Nairobi Oslo Chicago Prague Marseille Manhattan"
)
_VERBS = _words("Sings Falls Burns Waits Returns Sleeps Breaks Dances Weeps Shines Rises Remembers")
_INFINITIVES = _words("Sing Fly Love Dance Run Dream Forgive Fight Swim Laugh Remember Trust")
_ROMAN = ["II", "III", "IV", "V"]
_SUBTITLED = [n + ":" for n in _NOUNS]  # "Velvet Storm: ..." -- the colon ends the main title

# Each template is a list of slots; a slot is either a word list to draw from or a fixed word.
# They cover 2 to 8 words, short ones more often (as with real titles).
_TEMPLATES: list[list[list[str] | str]] = [
    [_ADJECTIVES, _NOUNS],  # Frozen Harbor
    ["The", _ADJECTIVES, _NOUNS],  # The Silent River
    ["The", _NOUNS, "of", _PLURALS],  # The Garden of Lies
    ["The", _ADJECTIVES, _NOUNS, "of", _PLURALS],  # The Silent River of Ashes
    [_NAMES, "and", "the", _ADJECTIVES, _NOUNS],  # Anna and the Iron Crown
    ["A", _NOUNS, "in", _PLACES],  # A Letter in Lisbon
    [_NOUNS, _ROMAN],  # Revenge III
    ["Return", "to", "the", _ADJECTIVES, _NOUNS],  # Return to the Hidden Island
    ["When", "the", _NOUNS, _VERBS],  # When the River Sings
    [_PLURALS, "and", _PLURALS],  # Dreams and Lies
    [_ADJECTIVES, _SUBTITLED, "The", _NOUNS, "of", _PLACES],  # Velvet Storm: The Song of Rome
    ["The", "Last", _NOUNS, "of", "the", _ADJECTIVES, _NOUNS],  # The Last Summer of the Pale Moon
    ["How", "the", _ADJECTIVES, _NOUNS, "Learned", "to", _INFINITIVES, "Again"],  # 8 words
    [_NAMES, "in", _PLACES],  # Clara in Vienna
    ["The", _PLURALS, "of", _PLACES],  # The Wolves of Havana
]
_TEMPLATE_WEIGHTS = np.array([8, 10, 6, 5, 2, 3, 2, 2, 3, 3, 3, 2, 1, 3, 4], dtype=np.float64)


def generate_synthetic(
    *, n_users: int, n_items: int, max_history: int, seed: int, zipf_exponent: float = 1.05
) -> Interactions:
    """Generate ``n_users`` users over ``n_items`` items, deterministically from ``seed``.

    Each user has between 3 and ``min(max_history + 1, n_items - 1)`` distinct items (fewer only
    when that cap is below 3), in increasing timestamp order; the last is held out.
    """
    check_settings(n_users, n_items, max_history, zipf_exponent)
    # Separate streams, so the catalogue and its popularity depend only on (seed, n_items): runs
    # that vary the number of users or the history length share the same items.
    item_rng, user_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    popularity = zipf_popularity(item_rng, n_items, zipf_exponent)
    catalogue = Catalogue(
        item_ids=[str(i) for i in range(n_items)],
        titles=_titles(item_rng, n_items),
        genres=_genres(item_rng, n_items),
    )
    lengths = history_lengths(user_rng, n_users, cap=min(max_history + 1, n_items - 1))
    owners, items = _sample_distinct_items(user_rng, popularity, lengths)
    return interactions_from_draws(
        "synthetic", catalogue, user_rng, owners, items, lengths, max_history=max_history,
        stats={"seed": seed, "zipf_exponent": zipf_exponent},
    )  # fmt: skip


def interactions_from_draws(
    source: str,
    catalogue: Catalogue,
    rng: np.random.Generator,
    owners: np.ndarray,
    items: np.ndarray,
    lengths: np.ndarray,
    *,
    max_history: int,
    stats: dict[str, float],
) -> Interactions:
    """The interactions of drawn (owner, item) pairs, grouped by owner in time order: ratings with ML-1M's shares
    and session-like timestamps drawn from `rng` (in that order), and the generator's settings in `stats`."""
    ratings = rng.choice(np.arange(1, 6, dtype=np.float32), size=items.size, p=RATING_PROBS)
    event_times = timestamps(rng, lengths)
    result = Interactions.from_events(
        source=source,
        catalogue=catalogue,
        user_ids=[str(u) for u in range(lengths.size)],
        user_codes=owners,
        item_codes=items,
        ratings=ratings,
        timestamps=event_times,
        max_users=None,
        max_history=max_history,
        min_interactions=1,
    )
    result.stats = {**result.history_stats(), **stats, "max_history": max_history, "history_sigma": HISTORY_SIGMA}
    return result


def check_settings(n_users: int, n_items: int, max_history: int, zipf_exponent: float) -> None:
    if n_users < 1:
        raise InputError(f"synthetic dataset: num_users must be >= 1, got {n_users}")
    # Every user needs a held-out item plus at least one history item, and one item left unseen.
    if n_items < 3:
        raise InputError(f"synthetic dataset: num_items must be >= 3, got {n_items}")
    if max_history < 1:
        raise InputError(f"synthetic dataset: history_length must be >= 1, got {max_history}")
    if not zipf_exponent > 0:
        raise InputError(f"synthetic dataset: zipf_exponent must be > 0, got {zipf_exponent}")


def zipf_popularity(rng: np.random.Generator, n_items: int, exponent: float) -> np.ndarray:
    """Item sampling probabilities, weight 1/rank^a, with ranks shuffled over the item ids."""
    ranks = rng.permutation(n_items) + 1
    weights = 1.0 / ranks.astype(np.float64) ** exponent
    return weights / weights.sum()


def history_lengths(rng: np.random.Generator, n_users: int, *, cap: int) -> np.ndarray:
    """Interactions per user (held-out one included): 3 + lognormal extra, clipped to ``cap``."""
    floor = min(MIN_INTERACTIONS, cap)
    # Put the median of the extra part at 1/8 of the room up to the cap: about 3% of users then
    # reach the cap, so the cut keeps the long tail (mean > median) instead of piling most users
    # up at max_history.
    median_extra = max((cap - floor) / 8.0, 0.5)
    extra = np.floor(rng.lognormal(np.log(median_extra), HISTORY_SIGMA, size=n_users))
    return np.minimum(floor + extra.astype(np.int64), cap)


def _sample_distinct_items(
    rng: np.random.Generator, popularity: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per user, ``lengths[u]`` distinct items drawn by popularity without replacement.

    Drawing with replacement and keeping first occurrences is exactly sequential sampling
    without replacement, and vectorises over all users. A user whose draws do not yield enough
    distinct items (long histories over a small catalogue) falls back to Gumbel top-k, which is
    the same distribution at O(n_items) cost. Returns (owner, item) arrays grouped by owner, in
    random order within each owner.
    """
    n_users, n_items = lengths.size, popularity.size
    cdf = np.cumsum(popularity)
    cdf[-1] = 1.0
    n_draws = 2 * lengths + 8  # enough for nearly every user under Zipf
    owner = np.repeat(np.arange(n_users, dtype=np.int64), n_draws)
    draws = np.minimum(np.searchsorted(cdf, rng.random(owner.size), side="right"), n_items - 1)
    _, first = np.unique(owner * n_items + draws, return_index=True)
    first.sort()  # back to draw order, still grouped by owner
    owner, draws = owner[first], draws[first]
    rank = np.arange(owner.size) - np.searchsorted(owner, owner)
    keep = rank < lengths[owner]
    owner, draws = owner[keep], draws[keep]

    got = np.bincount(owner, minlength=n_users)
    short = np.flatnonzero(got < lengths)
    if short.size:
        complete = ~np.isin(owner, short)
        owner, draws = owner[complete], draws[complete]
        log_p = np.log(popularity)
        extra_owner, extra_items = [owner], [draws]
        for u in short.tolist():
            keys = log_p + rng.gumbel(size=n_items)
            extra_items.append(np.argpartition(-keys, lengths[u] - 1)[: lengths[u]])
            extra_owner.append(np.full(lengths[u], u, dtype=np.int64))
        owner, draws = np.concatenate(extra_owner), np.concatenate(extra_items)

    # Shuffle within each user: the draw order favours popular items first, and the held-out
    # (last) item should not be biased towards the tail.
    order = np.lexsort((rng.random(owner.size), owner))
    return owner[order], draws[order].astype(np.int64)


def timestamps(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """Strictly increasing seconds per user: sessions of ratings minutes apart, days between."""
    n_users, total = lengths.size, int(lengths.sum())
    in_session = rng.random(total) < 0.8
    gaps = np.where(in_session, rng.exponential(120.0, total), rng.exponential(5 * 86_400.0, total))
    gaps = gaps.astype(np.int64) + 1
    starts = EPOCH_START + rng.integers(0, START_SPAN_S, size=n_users)
    offsets = np.cumsum(gaps)
    first = np.cumsum(lengths) - lengths  # index of each user's first event
    user_of = np.repeat(np.arange(n_users), lengths)
    # Each user's cumulative gaps, restarted at zero on their first event.
    return np.repeat(starts, lengths) + offsets - offsets[first][user_of]


def _titles(rng: np.random.Generator, n_items: int) -> list[str]:
    """Distinct movie-like titles such as "The Silent River of Ashes (1994)"."""
    return templated_titles(
        rng,
        n_items,
        _TEMPLATES,
        _TEMPLATE_WEIGHTS,
        slots=8,
        words=lambda _, slot: [slot] if isinstance(slot, str) else slot,
    )


def templated_titles(
    rng: np.random.Generator,
    n_items: int,
    templates: Sequence[Sequence[T]],
    weights: np.ndarray,
    *,
    slots: int,
    words: Callable[[int, T], Sequence[str]],
) -> list[str]:
    """Distinct titles with a year: each item draws a template (by `weights`), and each of its slots one of
    `words(item, slot)`; a rare clash becomes a sequel. `slots`: the random draws kept per item (at least the
    longest template), fixed so that a generator's titles stay the same for a seed."""
    template_ids = rng.choice(len(templates), size=n_items, p=weights / weights.sum())
    years = release_years(rng, n_items)
    picks = rng.integers(0, 1 << 30, size=(n_items, slots))
    seen: set[str] = set()
    titles: list[str] = []
    for i in range(n_items):
        chosen = []
        for j, slot in enumerate(templates[template_ids[i]]):
            pool = words(i, slot)
            chosen.append(pool[int(picks[i, j]) % len(pool)])
        titles.append(unique_title(" ".join(chosen), int(years[i]), seen))
    return titles


def release_years(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Years that skew recent, as in MovieLens, with a bounded tail back to 1920."""
    return np.maximum(2003 - np.floor(rng.exponential(14.0, size=n_items)).astype(np.int64), 1920)


def unique_title(words: str, year: int, seen: set[str]) -> str:
    """`words (year)`, made unique among `seen` (and added to it): titles identify items in prompts, so a rare
    clash becomes a sequel, `words 2 (year)`."""
    title, sequel = f"{words} ({year})", 2
    while title in seen:
        title, sequel = f"{words} {sequel} ({year})", sequel + 1
    seen.add(title)
    return title


def _genres(rng: np.random.Generator, n_items: int) -> list[list[str]]:
    """1-3 distinct genres per item, weighted by ML-1M genre frequency, listed alphabetically."""
    counts = rng.choice([1, 2, 3], size=n_items, p=[0.5, 0.35, 0.15])
    weights = np.array(list(GENRE_WEIGHTS.values()), dtype=np.float64)
    # Gumbel top-k per row: distinct genres, drawn in proportion to their weights.
    keys = np.log(weights) + rng.gumbel(size=(n_items, len(GENRES)))
    ranked = np.argsort(-keys, axis=1)
    return [sorted(GENRES[g] for g in ranked[i, : counts[i]].tolist()) for i in range(n_items)]
