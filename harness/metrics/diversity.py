"""Intra-list diversity from item categories."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.frames import as_int
from harness.metrics.lists import ItemCodes, blocks_of, prefix_sums
from harness.metrics.registry import Context, PerUser, family, metric_id

USER, ITEM = Columns.USER, Columns.ITEM


@family("diversity", ("diversity",))
def diversity(ctx: Context) -> PerUser | None:
    """diversity@k = 1 - mean pairwise cosine similarity of the category vectors of the items of
    L_u that have categories; users with fewer than two such items are left out (null).

    With v_i the unit-length multi-hot category vector of item i and m items,
    sum over pairs i<j of cos(v_i, v_j) = (|sum_i v_i|^2 - m) / 2, so no pair is materialised:
    sum_i v_i and m are prefix sums over each list (:mod:`harness.metrics.lists`)."""
    cats = ctx.item_categories
    if cats is None or "categories" not in cats.columns or cats.height == 0:
        ctx.note("diversity skipped: no item categories")
        return None
    items, values, n_cats = ctx.prepared("diversity", lambda: _category_vectors(cats))
    blocks = blocks_of(ctx)
    sums = prefix_sums(blocks, ItemCodes(blocks.recs.get_column(ITEM), items), values)
    columns = {}
    for k, total in sums.items():
        m = total[:, n_cats]
        squared = np.einsum("ij,ij->i", total[:, :n_cats], total[:, :n_cats])
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[metric_id("diversity", k)] = np.where(
                m >= 2, 1.0 - (squared - m) / (m * (m - 1)), np.nan
            )
    return PerUser(columns, missing=np.nan)


def _category_vectors(cats: pl.DataFrame) -> tuple[pl.Series, np.ndarray, int]:
    """Items with categories, and per item code a row of its unit-length category vector then 1
    (for "has categories"); the last row (items without categories) is all 0."""
    items = (
        cats.select(ITEM, pl.col("categories").list.unique().alias("cat"))
        .filter(pl.col("cat").list.len() > 0)
        .unique(ITEM, keep="first", maintain_order=True)
    )
    # (item code, category code, 1/sqrt(categories of the item)) for every pair
    pairs = (
        items.with_row_index("code")
        .with_columns((1.0 / pl.col("cat").list.len().cast(pl.Float64).sqrt()).alias("w"))
        .explode("cat")
        .with_columns((pl.col("cat").rank("dense") - 1).alias("cat_code"))
    )
    n_items, n_cats = items.height, as_int(pairs.get_column("cat_code").max()) + 1
    # one row per item code (the last: items without categories); columns: the unit vector, then
    # 1 for "has categories", so that the same prefix sums give m
    values = np.zeros((n_items + 1, n_cats + 1))
    values[pairs.get_column("code").to_numpy(), pairs.get_column("cat_code").to_numpy()] = (
        pairs.get_column("w").to_numpy()
    )
    values[:n_items, n_cats] = 1.0
    return items.get_column(ITEM), values, n_cats
