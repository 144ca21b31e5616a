"""Catalogue metrics: one value per segment, from how often each train item is recommended."""

from __future__ import annotations

import polars as pl

from harness.api import Columns
from harness.metrics.registry import Context, family, metric_id

USER, ITEM = Columns.USER, Columns.ITEM


def coverage(counts: pl.Series, n_items: int) -> float:
    """coverage@k = distinct train items across all lists cut at k / items in train.
    Recommended items outside the catalogue count for accuracy, not here."""
    return float((counts > 0).sum()) / n_items


def gini(counts: pl.Series) -> float:
    """gini@k = sum_i (2i - n - 1) x_i / (n sum_i x_i), x sorted ascending over all n train items,
    x_i how often item i is recommended (0 = equal exposure; 0 when nothing is recommended)."""
    x = counts.sort().cast(pl.Float64).to_numpy()
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = pl.int_range(1, n + 1, eager=True).to_numpy()
    return float(((2 * i - n - 1) * x).sum() / (n * total))


@family("catalog", ("coverage", "gini"))
def catalog(ctx: Context) -> dict | None:
    """Coverage and Gini per segment over the lists of that segment's truth users."""
    if ctx.train is None:
        ctx.notices.append("coverage and gini skipped: no train items (catalogue)")
        return None
    items = ctx.train.select(pl.col(ITEM).cast(ctx.recs.schema[ITEM], strict=False)).unique()
    listed = ctx.recs.join(items, on=ITEM, how="semi")
    cols = [f"c{k}" for k in ctx.ks]
    out = {}
    for segment in ("all", "warm", "cold"):
        rows = listed if segment == "all" else listed.filter(pl.col("segment") == segment)
        counts = rows.group_by(ITEM).agg((pl.col("rank") <= k).sum().alias(f"c{k}") for k in ctx.ks)
        full = items.join(counts, on=ITEM, how="left").with_columns(pl.col(cols).fill_null(0))
        values = {}
        for k in ctx.ks:
            values[metric_id("coverage", k)] = coverage(full.get_column(f"c{k}"), items.height)
            values[metric_id("gini", k)] = gini(full.get_column(f"c{k}"))
        out[segment] = values
    return out
