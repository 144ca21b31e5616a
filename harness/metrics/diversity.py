"""Intra-list diversity from item categories."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.frames import as_int
from harness.metrics.lists import ItemCodes, blocks_of, compiled_rows, prefix_sums
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
    codes = ItemCodes(blocks.recs.get_column(ITEM), items)
    columns = {}
    for k, (squared, m) in _squared_and_listed(blocks, codes, values, n_cats, ctx).items():
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[metric_id("diversity", k)] = np.where(
                m >= 2, 1.0 - (squared - m) / (m * (m - 1)), np.nan
            )
    return PerUser(columns, missing=np.nan)


def _squared_and_listed(blocks, codes, values, n_cats, ctx) -> dict[int, tuple]:
    """k -> (|sum of the unit category vectors of the first k items|^2, how many of them have
    categories), per block: a compiled pass over the rows where it applies, else prefix sums."""
    rows = compiled_rows(blocks, codes)
    if rows is None:
        out = {}
        for k, total in prefix_sums(blocks, codes, values).items():
            vectors = total[:, :n_cats]
            out[k] = (np.einsum("ij,ij->i", vectors, vectors), total[:, n_cats])
        return out
    from harness.kernels import category_sums

    categories, weights = ctx.prepared("diversity-rows", lambda: _category_rows(values, n_cats))
    n_blocks, ks = len(blocks.starts) - 1, rows[2]
    squared, listed = np.empty((n_blocks, len(ks))), np.empty((n_blocks, len(ks)))
    acc = np.zeros(n_cats)
    # tables by item id, not by code: one lookup less per row (twice as fast here)
    lut = codes.lut
    category_sums(
        *rows[:2], blocks.starts, ks, codes.lo, categories[lut], weights[lut], acc, squared, listed
    )
    return {int(k): (squared[:, j], listed[:, j]) for j, k in enumerate(ks)}


def _category_rows(values: np.ndarray, n_cats: int) -> tuple[np.ndarray, np.ndarray]:
    """Per item code (rows of ``values``): its categories, padded with -1 to the most any item
    has, and the weight of each (1 / sqrt(its categories); 0: none)."""
    vectors = values[:, :n_cats]
    has = vectors > 0
    width = max(int(has.sum(axis=1).max(initial=0)), 1)
    # each row's category codes first, in order, then -1s
    order = np.argsort(~has, axis=1, kind="stable")[:, :width]
    categories = np.where(np.take_along_axis(has, order, axis=1), order, -1).astype(np.int32)
    return categories, vectors.max(axis=1, initial=0.0)


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
