"""Novelty: how unexpected the recommended items are, from train popularity."""

from __future__ import annotations

import polars as pl

from harness.api import Columns
from harness.metrics.registry import Context, family, metric_id

USER, ITEM = Columns.USER, Columns.ITEM


@family("novelty", ("novelty",))
def novelty(ctx: Context) -> pl.DataFrame | None:
    """novelty@k = mean over L_u of -log2((c_i + 1) / (N + 1)); c_i train users of item i,
    N train users. A user without a list scores 0."""
    if ctx.train is None or USER not in ctx.train.columns:
        ctx.notices.append("novelty skipped: no train interactions")
        return None
    pairs = ctx.train.select(USER, ITEM).unique()
    n_users = pairs.get_column(USER).n_unique()
    pop = pairs.group_by(ITEM).agg(pl.len().alias("c"))
    scored = (ctx.recs.join(pop, on=ITEM, how="left")
              .with_columns((-(((pl.col("c").fill_null(0) + 1) / (n_users + 1)).log(2))).alias("nov")))
    per_user = scored.group_by(USER).agg(
        (pl.col("nov").filter(pl.col("rank") <= k).mean()).alias(metric_id("novelty", k))
        for k in ctx.ks)
    cols = [metric_id("novelty", k) for k in ctx.ks]
    return (ctx.users.select(USER).join(per_user, on=USER, how="left", maintain_order="left")
            .with_columns(pl.col(cols).fill_null(0.0)))
