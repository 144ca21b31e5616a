"""Intra-list diversity from item categories."""

from __future__ import annotations

import polars as pl

from harness.api import Columns
from harness.metrics.registry import Context, family, metric_id

USER, ITEM = Columns.USER, Columns.ITEM


@family("diversity", ("diversity",))
def diversity(ctx: Context) -> pl.DataFrame | None:
    """diversity@k = 1 - mean pairwise cosine similarity of the category vectors of the items of
    L_u that have categories; users with fewer than two such items are left out (null).

    With v_i the unit-length multi-hot category vector of item i and m items,
    sum over pairs i<j of cos(v_i, v_j) = (|sum_i v_i|^2 - m) / 2, so no pair is materialised."""
    cats = ctx.item_categories
    if cats is None or "categories" not in cats.columns or cats.height == 0:
        ctx.notices.append("diversity skipped: no item categories")
        return None
    items = (cats.select(ITEM, pl.col("categories").list.unique().alias("cat"))
             .filter(pl.col("cat").list.len() > 0)
             .with_columns((1.0 / pl.col("cat").list.len().cast(pl.Float64).sqrt()).alias("w")))
    if items.schema[ITEM] != ctx.recs.schema[ITEM]:
        items = items.with_columns(pl.col(ITEM).cast(ctx.recs.schema[ITEM], strict=False))
    listed = ctx.recs.join(items, on=ITEM, how="inner").select(USER, "rank", "cat", "w")
    counts = listed.group_by(USER).agg((pl.col("rank") <= k).sum().alias(f"m{k}") for k in ctx.ks)
    sums = (listed.explode("cat").group_by(USER, "cat")
            .agg(pl.col("w").filter(pl.col("rank") <= k).sum().alias(f"s{k}") for k in ctx.ks)
            .group_by(USER).agg((pl.col(f"s{k}") ** 2).sum() for k in ctx.ks))
    both = counts.join(sums, on=USER, how="inner")
    def value(k):
        m = pl.col(f"m{k}").cast(pl.Float64)
        mean_cos = (pl.col(f"s{k}") - m) / (m * (m - 1))
        return pl.when(m >= 2).then(1.0 - mean_cos).otherwise(None).alias(metric_id("diversity", k))
    per_user = both.select(USER, *(value(k) for k in ctx.ks))
    return ctx.users.select(USER).join(per_user, on=USER, how="left", maintain_order="left")
