"""A seeded generator of KION-shaped data with structure that models can learn.

Items belong to one of ``n_tastes`` taste groups (which also decides their genres) and have
power-law popularity. Each user has a favourite taste group; a share ``taste_strength`` of a
user's interactions is drawn from that group (popularity-weighted), the rest from global
popularity, so a personalised model beats popularity. Users are active in a window of the
period; timestamps spread over ``days``. All of it is vectorised numpy: no loop over users or
interactions.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

GENRES = [
    "drama",
    "comedy",
    "thriller",
    "action",
    "cartoons",
    "documentary",
    "horror",
    "romance",
    "fantasy",
    "crime",
    "family",
    "sci-fi",
    "adventure",
    "detective",
    "melodrama",
    "history",
]
AGES = ["age_18_24", "age_25_34", "age_35_44", "age_45_54", "age_55_64", "age_65_inf"]
INCOMES = ["income_0_20", "income_20_40", "income_40_60", "income_60_90", "income_90_150"]
COUNTRIES = ["Russia", "USA", "France", "UK", "Germany", "Japan", "Korea", "Spain"]
RATINGS = [0, 6, 12, 16, 18]


def generate(
    n_users: int = 5000,
    n_items: int = 1000,
    n_interactions: int = 50_000,
    n_tastes: int = 12,
    taste_strength: float = 0.7,
    popularity_exponent: float = 1.0,
    days: int = 161,
    start: str = "2021-03-13",
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Return (interactions, users, items) with KION's column names and types.

    At most ``n_interactions`` rows: repeated (user, item) draws collapse into one row (20%
    extra draws make up for that at realistic densities)."""
    rng = np.random.default_rng(seed)
    # items: taste group, power-law popularity (random order of ranks)
    item_taste = rng.integers(0, n_tastes, n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    order = np.argsort(item_taste, kind="stable")
    cum = np.cumsum(popularity[order])
    cum /= cum[-1]
    bounds = np.searchsorted(item_taste[order], np.arange(n_tastes + 1))
    seg_lo = np.concatenate([[0.0], cum])[bounds[:-1]]
    seg_hi = np.concatenate([[0.0], cum])[bounds[1:]]

    # users: activity ~ lognormal, scaled to the asked total (+ margin for duplicates)
    activity = rng.lognormal(0.0, 1.2, n_users)
    counts = np.maximum(1, np.round(activity / activity.sum() * n_interactions * 1.2)).astype(
        np.int64
    )
    user_taste = rng.integers(0, n_tastes, n_users)
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    m = users.size
    r = rng.random(m)
    personal = rng.random(m) < taste_strength
    t = user_taste[users]
    lo = np.where(personal, seg_lo[t], 0.0)
    hi = np.where(personal, seg_hi[t], 1.0)
    pos = np.minimum(np.searchsorted(cum, lo + r * (hi - lo), side="right"), n_items - 1)
    items = order[pos].astype(np.int64)

    # time: each user active in a window; uniform inside it
    period = days * 86400
    begin = rng.uniform(0, period, n_users)
    length = rng.uniform(0.1, 1.0, n_users) * (period - begin)
    seconds = begin[users] + rng.random(m) * length[users]
    t0 = datetime.fromisoformat(start)
    ts = (np.datetime64(t0, "s") + seconds.astype("timedelta64[s]")).astype("datetime64[us]")

    # one row per (user, item): keep the first draw of a pair, then the asked number of rows
    _, first = np.unique(users * n_items + items, return_index=True)
    if first.size > n_interactions:
        first = np.sort(rng.choice(first, n_interactions, replace=False))
    first = first[np.argsort(ts[first], kind="stable")]
    n = first.size
    inter = pl.DataFrame(
        {
            "user_id": users[first],
            "item_id": items[first],
            "last_watch_dt": ts[first].astype("datetime64[D]"),
            "total_dur": rng.lognormal(8.0, 1.5, n).astype(np.int64),
            "watched_pct": np.minimum(100.0, np.floor(rng.beta(0.6, 0.5, n) * 101)),
        }
    )

    user_frame = pl.DataFrame(
        {
            "user_id": np.arange(n_users, dtype=np.int64),
            "age": _pick(AGES, rng.integers(0, len(AGES), n_users)),
            "income": _pick(INCOMES, rng.integers(0, len(INCOMES), n_users)),
            "sex": _pick(["M", "F"], rng.integers(0, 2, n_users)),
            "kids_flg": rng.integers(0, 2, n_users).astype(np.int64),
        }
    )
    g1 = item_taste % len(GENRES)
    g2 = (item_taste * 7 + 3) % len(GENRES)
    genres = np.char.add(np.char.add(np.array(GENRES)[g1], ", "), np.array(GENRES)[g2])
    ids = np.arange(n_items)
    item_frame = pl.DataFrame(
        {
            "item_id": ids.astype(np.int64),
            "content_type": np.where(rng.random(n_items) < 0.8, "film", "series"),
            "title": np.char.add("title ", ids.astype(str)),
            "release_year": rng.integers(1950, 2022, n_items).astype(np.int64),
            "genres": genres,
            "countries": np.array(COUNTRIES)[rng.integers(0, len(COUNTRIES), n_items)],
            "for_kids": (np.array(GENRES)[g1] == "cartoons").astype(np.int64),
            "age_rating": np.array(RATINGS)[rng.integers(0, len(RATINGS), n_items)].astype(
                np.int64
            ),
            "studios": np.char.add("studio ", (ids % 50).astype(str)),
            "directors": np.char.add("director ", (ids % 3000).astype(str)),
            "actors": np.char.add("actor ", (ids % 5000).astype(str)),
        }
    )
    return inter, user_frame, item_frame


def _pick(values: list[str], index: np.ndarray) -> pl.Series:
    """Strings by index without building a numpy string array (much faster at scale)."""
    return pl.Series(values).gather(index)
