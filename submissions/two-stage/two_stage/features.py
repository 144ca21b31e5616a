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
  categories: mean and max), item popularity relative to the user's mainstreamness.
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
    return (pl.lit(ref).cast(pl.Datetime("us")) - expr.cast(pl.Datetime("us"))).dt.total_seconds() / DAY


def _recent(ref: datetime | None, recent_days: int) -> pl.Expr:
    if ref is None:
        return pl.lit(False)
    return pl.col(T).cast(pl.Datetime("us")) >= pl.lit(ref - timedelta(days=recent_days)).cast(pl.Datetime("us"))


def item_features(inter: pl.DataFrame, items: pl.DataFrame | None, ref: datetime | None,
                  recent_days: int) -> pl.DataFrame:
    """One row per train item (and per item of the item table): ``i_*`` columns."""
    feats = inter.group_by(I).agg(
        i_users=pl.col(U).n_unique().cast(pl.Float64),
        i_recent_users=pl.col(U).filter(_recent(ref, recent_days)).n_unique().cast(pl.Float64),
        i_days_since_first=_days_before(ref, pl.col(T).min()),
        i_days_since_last=_days_before(ref, pl.col(T).max()),
        i_mean_weight=pl.col(W).cast(pl.Float64).mean(),
    ).with_columns(i_recent_share=pl.col("i_recent_users") / pl.col("i_users"))
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


def user_features(inter: pl.DataFrame, item_feats: pl.DataFrame, ref: datetime | None,
                  recent_days: int) -> pl.DataFrame:
    """One row per train user: ``u_*`` columns."""
    with_pop = inter.join(item_feats.select(I, "i_users"), on=I, how="left")
    return with_pop.group_by(U).agg(
        u_interactions=pl.len().cast(pl.Float64),
        u_items=pl.col(I).n_unique().cast(pl.Float64),
        u_days_since_first=_days_before(ref, pl.col(T).min()),
        u_days_since_last=_days_before(ref, pl.col(T).max()),
        u_recent=_recent(ref, recent_days).sum().cast(pl.Float64),
        u_mean_item_pop=pl.col("i_users").mean(),
    )


def category_shares(inter: pl.DataFrame, items: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(item_id -> cat, the share of each user's interactions in each category), or None when
    items carry no categories."""
    if items is None or CAT not in items.columns:
        return None
    cats = items.select(I, pl.col(CAT).alias("cat")).explode("cat").drop_nulls("cat").unique()
    totals = inter.group_by(U).agg(n=pl.len())
    share = (
        inter.select(U, I).join(cats, on=I, how="inner")
        .group_by(U, "cat").agg(c=pl.len())
        .join(totals, on=U, how="inner")
        .select(U, "cat", share=pl.col("c") / pl.col("n"))
    )
    return cats, share


def genre_affinity(shares: tuple[pl.DataFrame, pl.DataFrame], pairs: pl.DataFrame) -> pl.DataFrame:
    """For each (user, item) of ``pairs``: mean and max over the item's categories of the share of
    the user's interactions that fall in that category."""
    cats, share = shares
    return (
        pairs.select(U, I).unique().join(cats, on=I, how="inner")
        .join(share, on=[U, "cat"], how="left")
        .group_by(U, I)
        .agg(ui_genre_mean=pl.col("share").fill_null(0.0).mean(),
             ui_genre_max=pl.col("share").fill_null(0.0).max())
    )


def feature_tables(inter: pl.DataFrame, items: pl.DataFrame | None, cutoff: datetime | None,
                   recent_days: int) -> dict:
    """Everything that does not depend on the candidate pairs: computed once per training part."""
    ref = end_time(inter, cutoff)
    ifeats = item_features(inter, items, ref, recent_days)
    return {"users": user_features(inter, ifeats, ref, recent_days), "items": ifeats,
            "shares": category_shares(inter, items)}


def add_features(cands: pl.DataFrame, inter: pl.DataFrame, items: pl.DataFrame | None,
                 cutoff: datetime | None, recent_days: int, tables: dict | None = None) -> pl.DataFrame:
    """Join user, item and user x item features onto the candidate pairs (row order kept).
    ``tables``: the result of :func:`feature_tables` for the same arguments, to reuse it."""
    tables = tables or feature_tables(inter, items, cutoff, recent_days)
    out = (
        cands.join(tables["users"], on=U, how="left", maintain_order="left")
        .join(tables["items"], on=I, how="left", maintain_order="left")
    )
    if tables["shares"] is not None:
        affinity = genre_affinity(tables["shares"], cands)
        out = out.join(affinity, on=[U, I], how="left", maintain_order="left").with_columns(
            pl.col("ui_genre_mean", "ui_genre_max").fill_null(0.0)
        )
    return out.with_columns(ui_pop_ratio=pl.col("i_users") / pl.col("u_mean_item_pop"))
