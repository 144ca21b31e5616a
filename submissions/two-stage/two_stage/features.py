"""Second-stage features, computed from one training part only and relative to its end time.

Everything here is a function of ``interactions`` (and the item table) that were observed before
``ref`` (the cutoff of the part): the ranker learns on a window carved from train with features
from before the window, and predicts with features from the whole train, so both see the same
kind of information at the same distance from "now".

- user: interactions, distinct items, days since first and last interaction, interactions in the
  last ``recent_days``, mean popularity of the user's items (how mainstream the user is);
- item: distinct users, users in the last ``recent_days`` and their share of all, days since the
  item's first and last interaction, mean weight, numeric columns of the item table (e.g. year)
  and a year at the end of a text column (a MovieLens title);
- user x item: genre affinity (the share of the user's interactions in each of the item's
  categories: mean and max), item popularity relative to the user's mainstreamness, the item's
  first and last interaction relative to the user's last one (days), the item's numeric columns
  minus the user's mean of them (e.g. release year against the years the user watches);
- the user's recent context (``context=True``, on data small enough, see :func:`context_tables`):
  the candidate's mean cosine similarity (co-occurrence over users) with the user's last 3 and
  last 10 items, its genre shares among those last 10 items, and the item's interactions in the
  30 and 365 days before the user's last interaction and before it at all. Nothing is counted
  after the user's last interaction: on a per-user split other users' later interactions are in
  the part, but no deployed recommender could see them (an earlier "365 days after" count was
  removed for that reason).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from harness.api import Columns

U, I, T, W, CAT = Columns.USER, Columns.ITEM, Columns.TIMESTAMP, Columns.WEIGHT, Columns.CATEGORIES
DAY = 86_400.0


def end_time(interactions: pl.DataFrame, cutoff: datetime | None) -> datetime | None:
    """The time features are measured from: the cutoff, else just after the last interaction."""
    if cutoff is not None:
        return cutoff
    last = interactions.get_column(T).max()
    return None if last is None else last + timedelta(microseconds=1)


def _days_before(ref: datetime | None, expr: pl.Expr) -> pl.Expr:
    if ref is None:
        return pl.lit(None, dtype=pl.Float64)
    return (
        pl.lit(ref).cast(pl.Datetime("us")) - expr.cast(pl.Datetime("us"))
    ).dt.total_seconds() / DAY


def _recent(ref: datetime | None, recent_days: int) -> pl.Expr:
    if ref is None:
        return pl.lit(False)
    return pl.col(T).cast(pl.Datetime("us")) >= pl.lit(ref - timedelta(days=recent_days)).cast(
        pl.Datetime("us")
    )


def item_features(
    inter: pl.DataFrame, items: pl.DataFrame | None, ref: datetime | None, recent_days: int
) -> pl.DataFrame:
    """One row per train item (and per item of the item table): ``i_*`` columns."""
    feats = (
        inter.group_by(I)
        .agg(
            i_users=pl.col(U).n_unique().cast(pl.Float64),
            i_recent_users=pl.col(U).filter(_recent(ref, recent_days)).n_unique().cast(pl.Float64),
            i_days_since_first=_days_before(ref, pl.col(T).min()),
            i_days_since_last=_days_before(ref, pl.col(T).max()),
            i_mean_weight=pl.col(W).cast(pl.Float64).mean(),
        )
        .with_columns(i_recent_share=pl.col("i_recent_users") / pl.col("i_users"))
    )
    meta = _numeric_item_columns(items)
    if meta is not None:
        feats = feats.join(meta, on=I, how="left")
    return feats


YEAR_IN_TEXT = r"\((\d{4})\)\s*$"


def _numeric_item_columns(items: pl.DataFrame | None) -> pl.DataFrame | None:
    """The item table's numeric and boolean columns, prefixed ``im_`` (ids and lists left out),
    plus ``im_{col}_year`` for a text column whose values mostly end in a year in parentheses
    (MovieLens keeps the release year only in ``title``: "Heat (1995)")."""
    if items is None:
        return None
    cols = [
        pl.col(c).cast(pl.Float64).alias(f"im_{c}")
        for c, dtype in items.schema.items()
        if c != I and (dtype.is_numeric() or dtype == pl.Boolean)
    ]
    for c, dtype in items.schema.items():
        if c != I and dtype == pl.Utf8:
            year = pl.col(c).str.extract(YEAR_IN_TEXT, 1).cast(pl.Float64)
            if items.select(year.is_not_null().mean()).item() >= 0.5:
                cols.append(year.alias(f"im_{c}_year"))
    if not cols:
        return None
    return items.select(pl.col(I), *cols).unique(subset=I, keep="first", maintain_order=True)


def user_features(
    inter: pl.DataFrame, item_feats: pl.DataFrame, ref: datetime | None, recent_days: int
) -> pl.DataFrame:
    """One row per train user: ``u_*`` columns."""
    # joins keep the left order: a float mean's rounding follows the order it adds rows in
    with_pop = inter.join(item_feats.select(I, "i_users"), on=I, how="left", maintain_order="left")
    return with_pop.group_by(U).agg(
        u_interactions=pl.len().cast(pl.Float64),
        u_items=pl.col(I).n_unique().cast(pl.Float64),
        u_days_since_first=_days_before(ref, pl.col(T).min()),
        u_days_since_last=_days_before(ref, pl.col(T).max()),
        u_recent=_recent(ref, recent_days).sum().cast(pl.Float64),
        u_mean_item_pop=pl.col("i_users").mean(),
    )


def user_item_meta_means(inter: pl.DataFrame, item_feats: pl.DataFrame) -> pl.DataFrame | None:
    """The mean of every item-table numeric column (``im_*``) over each user's items (``um_*``):
    the user's taste in release years, runtimes, ...; None when the items have none."""
    cols = [c for c in item_feats.columns if c.startswith("im_")]
    if not cols:
        return None
    return (
        inter.select(U, I)
        .join(item_feats.select(I, *cols), on=I, how="inner", maintain_order="left")
        .group_by(U)
        .agg(*(pl.col(c).mean().alias("um_" + c[3:]) for c in cols))
    )


def user_table_columns(users: pl.DataFrame | None) -> pl.DataFrame | None:
    """The dataset's user features as numbers (``uf_*``): numeric and boolean columns as they are,
    text and categorical columns as the code of the value in sorted order (null stays null)."""
    if users is None or users.height == 0 or U not in users.columns:
        return None
    cols = []
    for c, dtype in users.schema.items():
        if c == U:
            continue
        if dtype.is_numeric() or dtype == pl.Boolean:
            cols.append(pl.col(c).cast(pl.Float64).alias(f"uf_{c}"))
        elif dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum):
            text = pl.col(c).cast(pl.Utf8)
            cols.append(text.rank("dense").cast(pl.Float64).alias(f"uf_{c}"))
    if not cols:
        return None
    return users.select(pl.col(U), *cols).unique(subset=U, keep="first", maintain_order=True)


def category_shares(
    inter: pl.DataFrame, items: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None:
    """(item_id -> cat, each user's interaction count in each category, each user's interaction
    count), or None when items carry no categories. Counts, not shares: sums of integers do not
    depend on the order polars adds them in (which follows its thread count)."""
    if items is None or CAT not in items.columns:
        return None
    cats = items.select(I, pl.col(CAT).alias("cat")).explode("cat").drop_nulls("cat").unique()
    totals = inter.group_by(U).agg(n=pl.len())
    counts = inter.select(U, I).join(cats, on=I, how="inner").group_by(U, "cat").agg(c=pl.len())
    return cats, counts, totals


def genre_affinity(
    shares: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame], pairs: pl.DataFrame
) -> pl.DataFrame:
    """For each (user, item) of ``pairs``: mean and max over the item's categories of the share of
    the user's interactions that fall in that category. Computed as integer sums over the
    categories divided once by (categories x the user's interactions), so the value is the same
    whatever order the rows arrive in (a float mean of shares is not: its rounding follows the
    summation order, and so the thread count)."""
    cats, counts, totals = shares
    return (
        pairs.select(U, I)
        .unique()
        .join(cats, on=I, how="inner")
        .join(counts, on=[U, "cat"], how="left")
        .group_by(U, I)
        .agg(
            _c_sum=pl.col("c").fill_null(0).sum(),
            _c_max=pl.col("c").fill_null(0).max(),
            _n_cats=pl.len(),
        )
        .join(totals, on=U, how="left")
        .select(
            U,
            I,
            ui_genre_mean=pl.col("_c_sum").cast(pl.Float64)
            / (pl.col("_n_cats").cast(pl.Float64) * pl.col("n").cast(pl.Float64)),
            ui_genre_max=pl.col("_c_max").cast(pl.Float64) / pl.col("n").cast(pl.Float64),
        )
    )


LAST_ITEMS = (3, 10)  # the user's last items the candidate's similarity is measured against
GENRE_LAST = 10  # the user's last items the recent genre shares come from
POP_DAYS = (30, 365)  # windows before the user's last interaction for the item's counts
SIM_USERS = 1_000  # users whose similarity rows are computed at once
EPOCH_OFFSET = 2**32  # item code x offset + seconds since 1970: one sortable int64 key


def _seconds(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Datetime("us")).dt.epoch("s").clip(0, EPOCH_OFFSET - 1)


def context_tables(inter: pl.DataFrame, items: pl.DataFrame | None) -> dict:
    """What the recent-context features need from one part: the user x item matrix with columns
    scaled by 1/sqrt(item users) (for cosine similarities), each user's last ``max(LAST_ITEMS)``
    items (by time, ties by item id), each user's last time, and every interaction as a sorted
    (item code, seconds) key. Integer-exact or summed by scipy in index order: the values do not
    depend on the thread count."""
    item_ids = inter.get_column(I).unique().sort()
    user_ids = inter.get_column(U).unique().sort()
    codes = inter.select(
        _u=_code(inter.get_column(U), user_ids),
        _i=_code(inter.get_column(I), item_ids),
        _t=_seconds(pl.col(T)).fill_null(0),
    )
    pairs = codes.select("_u", "_i").unique().sort("_u", "_i")
    ucode, icode = pairs.get_column("_u").to_numpy(), pairs.get_column("_i").to_numpy()
    deg = np.bincount(icode, minlength=item_ids.len()).astype(np.float64)
    matrix = sp.csr_matrix(
        (1.0 / np.sqrt(deg[icode]), (ucode, icode)), shape=(user_ids.len(), item_ids.len())
    )
    last = (
        inter.select(U, I, T)
        .sort([U, T, I], descending=[False, True, True], nulls_last=True)
        .with_columns(_pos=pl.int_range(pl.len()).over(U))
        .filter(pl.col("_pos") < max(max(LAST_ITEMS), GENRE_LAST))
    )
    keys = np.sort(
        codes.get_column("_i").to_numpy() * EPOCH_OFFSET + codes.get_column("_t").to_numpy()
    )
    return {
        "item_ids": item_ids,
        "matrix": matrix,
        "last": last,
        "keys": keys,
        "genre_last": category_shares(last.filter(pl.col("_pos") < GENRE_LAST), items),
    }


def _code(ids: pl.Series, index: pl.Series) -> pl.Series:
    """Position of each id in the sorted, distinct ``index`` (-1 when absent)."""
    if index.len() == 0:
        return pl.Series(np.full(ids.len(), -1, dtype=np.int64))
    pos = np.clip(index.search_sorted(ids).to_numpy().astype(np.int64), 0, index.len() - 1)
    found = (index.gather(pos) == ids).fill_null(False).to_numpy()
    return pl.Series(np.where(found, pos, -1).astype(np.int64))


def context_features(ctx: dict, pairs: pl.DataFrame) -> pl.DataFrame:
    """The recent-context features of ``pairs`` (user_id, item_id; row order kept)."""
    users = pairs.get_column(U).unique().sort()
    item = _code(pairs.get_column(I), ctx["item_ids"]).to_numpy()
    row = _code(pairs.get_column(U), users).to_numpy()  # the pair's user among ``users``
    last = ctx["last"].join(users.to_frame(), on=U, how="semi")
    lrow = _code(last.get_column(U), users).to_numpy()
    lcode = _code(last.get_column(I), ctx["item_ids"]).to_numpy()
    pos = last.get_column("_pos").to_numpy()
    matrix = ctx["matrix"]
    ok = item >= 0
    out: dict[str, np.ndarray] = {}
    for n in LAST_ITEMS:
        keep = (pos < n) & (lcode >= 0)
        # L (users x items): 1 on each of the user's last n items. (L Xs^T Xs)[u, i] with
        # Xs = X / sqrt(item users): the sum over the user's last n items j of
        # |users(i) & users(j)| / sqrt(|users(i)| |users(j)|), i.e. of cosine similarities;
        # SIM_USERS users at a time bound the (users x items) product
        n_last = np.bincount(lrow[keep], minlength=users.len()).astype(np.float64)
        value = np.full(pairs.height, np.nan)
        for lo in range(0, users.len(), SIM_USERS):
            hi = min(lo + SIM_USERS, users.len())
            part = keep & (lrow >= lo) & (lrow < hi)
            lmat = sp.csr_matrix(
                (np.ones(int(part.sum())), (lrow[part] - lo, lcode[part])),
                shape=(hi - lo, matrix.shape[1]),
            )
            sims = ((lmat @ matrix.T) @ matrix).tocsr()
            at = ok & (row >= lo) & (row < hi)
            value[at] = np.asarray(sims[row[at] - lo, item[at]]).ravel() / np.maximum(
                n_last[row[at]], 1
            )
        out[f"ui_sim_last{n}"] = value
    # the item's interactions before the user's last one (on a per-user split: the user's "now")
    t_user = ctx["last"].filter(pl.col("_pos") == 0).select(U, _t=_seconds(pl.col(T)))
    t = (
        pairs.select(U)
        .join(t_user, on=U, how="left", maintain_order="left")
        .get_column("_t")
        .fill_null(0)
        .to_numpy()
        .astype(np.int64)
    )
    keys, base = ctx["keys"], np.where(ok, item, 0) * EPOCH_OFFSET

    def count(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        lo, hi = np.clip(lo, 0, EPOCH_OFFSET - 1), np.clip(hi, 0, EPOCH_OFFSET - 1)
        n = np.searchsorted(keys, base + hi) - np.searchsorted(keys, base + lo)
        return np.where(ok, n, 0).astype(np.float64)

    for d in POP_DAYS:
        out[f"ui_pop_before_{d}d"] = count(t - d * 86_400, t)
    out["ui_pop_before"] = count(np.zeros_like(t), t)
    # nothing at or after t: the item's later interactions (other users', in the part on a
    # per-user split) are the user's future, which no deployed recommender sees
    frame = pairs.select(U, I).with_columns(**{k: pl.Series(v) for k, v in out.items()})
    if ctx["genre_last"] is not None:
        affinity = genre_affinity(ctx["genre_last"], pairs).rename(
            {"ui_genre_mean": "ui_genre_last_mean", "ui_genre_max": "ui_genre_last_max"}
        )
        frame = frame.join(affinity, on=[U, I], how="left", maintain_order="left").with_columns(
            pl.col("ui_genre_last_mean", "ui_genre_last_max").fill_null(0.0)
        )
    return frame.drop(U, I)


def feature_tables(
    inter: pl.DataFrame,
    items: pl.DataFrame | None,
    cutoff: datetime | None,
    recent_days: int,
    users: pl.DataFrame | None = None,
    context: bool = True,
) -> dict:
    """Everything that does not depend on the candidate pairs: computed once per training part.
    ``users``: the dataset's user feature table, if any; ``context``: the recent-context
    features' tables too (see :func:`context_tables`)."""
    ref = end_time(inter, cutoff)
    ifeats = item_features(inter, items, ref, recent_days)
    ufeats = user_features(inter, ifeats, ref, recent_days)
    means = user_item_meta_means(inter, ifeats)
    if means is not None:
        ufeats = ufeats.join(means, on=U, how="left")
    table = user_table_columns(users)
    if table is not None:
        ufeats = ufeats.join(table, on=U, how="full", coalesce=True)
    return {
        "users": ufeats,
        "items": ifeats,
        "shares": category_shares(inter, items),
        "context": context_tables(inter, items) if context and inter.height else None,
    }


def add_features(
    cands: pl.DataFrame,
    inter: pl.DataFrame,
    items: pl.DataFrame | None,
    cutoff: datetime | None,
    recent_days: int,
    tables: dict | None = None,
) -> pl.DataFrame:
    """Join user, item and user x item features onto the candidate pairs (row order kept).
    ``tables``: the result of :func:`feature_tables` for the same arguments, to reuse it."""
    tables = tables or feature_tables(inter, items, cutoff, recent_days)
    out = cands.join(tables["users"], on=U, how="left", maintain_order="left").join(
        tables["items"], on=I, how="left", maintain_order="left"
    )
    if tables["shares"] is not None:
        affinity = genre_affinity(tables["shares"], cands)
        out = out.join(affinity, on=[U, I], how="left", maintain_order="left").with_columns(
            pl.col("ui_genre_mean", "ui_genre_max").fill_null(0.0)
        )
    if tables.get("context") is not None:
        out = pl.concat([out, context_features(tables["context"], cands)], how="horizontal")
    # no feature compares the item's train times with the user's last one: on a per-user split
    # the item's interactions after the user's "now" are other users' activity in this user's
    # test period (``ui_first_after_user``/``ui_last_after_user`` did, and were removed)
    means = [c for c in out.columns if c.startswith("um_")]
    return out.with_columns(
        *((pl.col("im_" + c[3:]) - pl.col(c)).alias("ui_" + c[3:] + "_gap") for c in means),
        ui_pop_ratio=pl.col("i_users") / pl.col("u_mean_item_pop"),
    )
