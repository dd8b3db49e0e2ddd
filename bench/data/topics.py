"""A seeded synthetic dataset a pretrained language model can rank: titles built from topic words ("Zombie
Graveyard (1987)" is horror, "Starship Nebula (2011)" science fiction) and users who prefer one or two topics.

The plain synthetic generator (bench.data.synthetic) gives realistic shapes but titles without meaning, so even
a real model ranks its candidates at chance. Here the held-out item follows the same topic preferences as the
history, so a model that notices "this user watches horror" beats chance, and by how much is a measure of it.
History lengths, item popularity, ratings and timestamps keep the MovieLens-like shapes of the plain generator.
"""

from __future__ import annotations

import numpy as np

from bench.core.errors import InputError
from bench.data.interactions import Catalogue, Interactions
from bench.data.synthetic import (
    check_settings,
    history_lengths,
    interactions_from_draws,
    templated_titles,
    zipf_popularity,
)


def _words(text: str) -> list[str]:
    return text.split()


# Topic -> (adjectives, nouns): words a reader (or a language model) associates with that topic and no other.
TOPIC_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "Horror": (
        _words("Haunted Cursed Undead Bloody Possessed Screaming Wicked Creeping Rotting Demonic"),
        _words("Zombie Ghost Vampire Graveyard Nightmare Demon Werewolf Coffin Asylum Poltergeist Exorcism Crypt"),
    ),
    "Romance": (
        _words("Lovesick Tender Romantic Forbidden Passionate Sweet Starry-Eyed Heartfelt Enchanted Devoted"),
        _words("Kiss Wedding Valentine Sweetheart Honeymoon Bride Lovers Romance Courtship Engagement Soulmate Rose"),
    ),
    "Sci-Fi": (
        _words("Galactic Cosmic Robotic Alien Quantum Orbital Cybernetic Martian Interstellar Futuristic"),
        _words("Starship Robot Planet Galaxy Android Asteroid Spaceship Nebula Cyborg Wormhole Spacestation Laser"),
    ),
    "Western": (
        _words("Dusty Lawless Frontier Outlaw Rawhide Sagebrush Prairie Gunslinging Desert Wild-West"),
        _words("Sheriff Cowboy Saloon Ranch Gunslinger Stagecoach Rodeo Canyon Bandit Posse Homestead Mustang"),
    ),
    "War": (
        _words("Fallen Armored Heroic Wartime Embattled Decorated Allied Frontline Besieged Courageous"),
        _words("Battalion Battle Soldier Trenches Invasion Bombers Warship Platoon Regiment Airstrike Sniper General"),
    ),
    "Comedy": (
        _words("Silly Crazy Goofy Hilarious Wacky Zany Clumsy Ridiculous Slapstick Giggling"),
        _words("Party Prank Roommates Vacation Clowns Bachelor Mischief Hijinks Blunder Sitcom Jokester Shenanigans"),
    ),
    "Children's": (
        _words("Little Magical Friendly Fluffy Tiny Cuddly Playful Sparkly Bouncy Happy"),
        _words("Puppy Kitten Unicorn Teddy Bunny Fairy Toys Dinosaur Pony Elf Lollipop Playground"),
    ),
    "Crime": (
        _words("Deadly Criminal Undercover Corrupt Organized Ruthless Wanted Guilty Notorious Crooked"),
        _words("Heist Detective Gangster Murder Mafia Robbery Cop Kidnapping Alibi Smuggler Prosecutor Hitman"),
    ),
    "Sports": (
        _words("Champion Winning Olympic Undefeated Athletic Competitive Varsity Record-Breaking Sporting Unbeaten"),
        _words("Football Boxer Marathon Touchdown Quarterback Stadium Playoffs Goalkeeper Tournament")
        + _words("Racer Coach Trophy"),
    ),
    "Musical": (
        _words("Rocking Jazzy Soulful Melodic Rhythmic Singing Harmonious Acoustic Operatic Swinging"),
        _words("Guitar Symphony Jazz Concert Rockstar Orchestra Melody Ballad Choir Piano Drummer Serenade"),
    ),
}
TOPICS: list[str] = list(TOPIC_WORDS)

# Templates over one topic's words: A = an adjective, N = a noun. Two to six words, short ones more often.
_TEMPLATES: list[list[str]] = [
    ["A", "N"],  # Haunted Graveyard
    ["The", "A", "N"],  # The Cursed Coffin
    ["N", "N"],  # Zombie Asylum
    ["The", "N", "of", "the", "A", "N"],  # The Ghost of the Rotting Crypt
    ["Return", "of", "the", "N"],  # Return of the Vampire
    ["A", "N", "N"],  # Bloody Werewolf Nightmare
]
_TEMPLATE_WEIGHTS = np.array([6, 6, 4, 2, 2, 2], dtype=np.float64)

# Where a user's interactions come from: the main topic, a second topic, or anywhere (a user's history is not
# pure, and neither is what they choose next).
MAIN_TOPIC_SHARE = 0.7
MIN_ITEMS_PER_TOPIC = 2  # so that most topics have items (preferences avoid any that is left empty)
SECOND_TOPIC_SHARE = 0.2


def generate_topics(
    *, n_users: int, n_items: int, max_history: int, seed: int, zipf_exponent: float = 1.05
) -> Interactions:
    """``n_users`` users over ``n_items`` topic-titled items, deterministically from ``seed``. Each item has one
    topic (its genre); each user draws history and held-out items from a main topic, a second one, or anywhere."""
    check_settings(n_users, n_items, max_history, zipf_exponent)
    if n_items < MIN_ITEMS_PER_TOPIC * len(TOPICS):
        raise InputError(
            f"dataset synthetic_topics: num_items must be >= {MIN_ITEMS_PER_TOPIC * len(TOPICS)} "
            f"({MIN_ITEMS_PER_TOPIC} per topic), got {n_items}"
        )
    item_rng, user_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 7]).spawn(2))
    topic_of = item_rng.integers(0, len(TOPICS), size=n_items)
    popularity = zipf_popularity(item_rng, n_items, zipf_exponent)
    catalogue = Catalogue(
        item_ids=[str(i) for i in range(n_items)],
        titles=_titles(item_rng, topic_of),
        genres=[[TOPICS[t]] for t in topic_of.tolist()],
    )
    lengths = history_lengths(user_rng, n_users, cap=min(max_history + 1, n_items - 1))
    owners, items = _sample_by_preference(user_rng, popularity, topic_of, lengths)
    stats = {"seed": seed, "zipf_exponent": zipf_exponent, "topics": len(TOPICS)}
    stats |= {"main_topic_share": MAIN_TOPIC_SHARE, "second_topic_share": SECOND_TOPIC_SHARE}
    return interactions_from_draws(
        "synthetic_topics", catalogue, user_rng, owners, items, lengths, max_history=max_history, stats=stats
    )


def _titles(rng: np.random.Generator, topic_of: np.ndarray) -> list[str]:
    """Distinct titles from each item's topic words, with a year; a rare clash becomes a sequel."""

    def words(item: int, slot: str) -> list[str]:
        adjectives, nouns = TOPIC_WORDS[TOPICS[topic_of[item]]]
        return adjectives if slot == "A" else nouns if slot == "N" else [slot]

    return templated_titles(rng, topic_of.size, _TEMPLATES, _TEMPLATE_WEIGHTS, slots=6, words=words)


def _sample_by_preference(
    rng: np.random.Generator, popularity: np.ndarray, topic_of: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per user, ``lengths[u]`` distinct items in time order: each from the user's main topic, second topic or the
    whole catalogue (by MAIN_TOPIC_SHARE, SECOND_TOPIC_SHARE), popular items more often within each pool. The last
    one is the held-out item, drawn the same way as the history."""
    n_topics = len(TOPICS)
    members = [np.flatnonzero(topic_of == t) for t in range(n_topics)]
    pools = [*members, np.arange(topic_of.size)]
    cdfs = [np.cumsum(popularity[pool] / max(popularity[pool].sum(), 1e-300)) for pool in pools]
    # Preferences are drawn among topics that have items (a small catalogue can leave one empty).
    offered = np.array([t for t in range(n_topics) if members[t].size])
    main_at = rng.integers(0, offered.size, size=lengths.size)
    step = rng.integers(1, offered.size, size=lengths.size) if offered.size > 1 else np.zeros(lengths.size, int)
    main, second = offered[main_at], offered[(main_at + step) % offered.size]  # second: another topic if any
    owners: list[np.ndarray] = []
    items: list[np.ndarray] = []
    for user, length in enumerate(lengths.tolist()):
        chosen: dict[int, None] = {}  # insertion-ordered set
        attempts = 0
        while len(chosen) < length:
            roll = rng.random()
            pool = main[user] if roll < MAIN_TOPIC_SHARE else second[user]
            if roll >= MAIN_TOPIC_SHARE + SECOND_TOPIC_SHARE or attempts > 50 * length:
                pool = n_topics  # anywhere; also the way out when a small topic runs out of unseen items
            pick = int(np.searchsorted(cdfs[pool], rng.random(), side="right"))
            chosen.setdefault(int(pools[pool][min(pick, pools[pool].size - 1)]))
            attempts += 1
        owners.append(np.full(length, user, dtype=np.int64))
        items.append(np.fromiter(chosen, dtype=np.int64, count=length))
    return np.concatenate(owners), np.concatenate(items)
