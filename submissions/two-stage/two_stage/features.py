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
  minus the user's mean of them (e.g. release year against the years the user watches).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

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


def _epoch_days(expr: pl.Expr) -> pl.Expr:
    """Days since 1970 of a timestamp (null stays null): to compare a user's and an item's times."""
    return expr.cast(pl.Datetime("us")).dt.epoch("s").cast(pl.Float64) / DAY


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
            _i_first=_epoch_days(pl.col(T).min()),
            _i_last=_epoch_days(pl.col(T).max()),
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
        _u_last=_epoch_days(pl.col(T).max()),
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


def feature_tables(
    inter: pl.DataFrame,
    items: pl.DataFrame | None,
    cutoff: datetime | None,
    recent_days: int,
    users: pl.DataFrame | None = None,
) -> dict:
    """Everything that does not depend on the candidate pairs: computed once per training part.
    ``users``: the dataset's user feature table, if any."""
    ref = end_time(inter, cutoff)
    ifeats = item_features(inter, items, ref, recent_days)
    ufeats = user_features(inter, ifeats, ref, recent_days)
    means = user_item_meta_means(inter, ifeats)
    if means is not None:
        ufeats = ufeats.join(means, on=U, how="left")
    table = user_table_columns(users)
    if table is not None:
        ufeats = ufeats.join(table, on=U, how="full", coalesce=True)
    return {"users": ufeats, "items": ifeats, "shares": category_shares(inter, items)}


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
    # the item's first/last interaction relative to the user's last one (in days): on per-user
    # splits the user's "now" is their own last train interaction, not the split's end
    means = [c for c in out.columns if c.startswith("um_")]
    return out.with_columns(
        *((pl.col("im_" + c[3:]) - pl.col(c)).alias("ui_" + c[3:] + "_gap") for c in means),
        ui_pop_ratio=pl.col("i_users") / pl.col("u_mean_item_pop"),
        ui_first_after_user=pl.col("_i_first") - pl.col("_u_last"),
        ui_last_after_user=pl.col("_i_last") - pl.col("_u_last"),
    ).drop("_i_first", "_i_last", "_u_last")
