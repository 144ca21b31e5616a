"""Novelty: how unexpected the recommended items are, from train popularity."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.metrics.lists import ItemCodes, blocks_of, prefix_sums
from harness.metrics.registry import Context, PerUser, family, metric_id
from harness.pairs import packed_pairs, packing

USER, ITEM = Columns.USER, Columns.ITEM


@family("novelty", ("novelty",))
def novelty(ctx: Context) -> PerUser | None:
    """novelty@k = mean over L_u of -log2((c_i + 1) / (N + 1)); c_i train users of item i,
    N train users. A user without a list scores 0."""
    train = ctx.train
    if train is None or USER not in train.columns:
        ctx.note("novelty skipped: no train interactions")
        return None
    items, values = ctx.prepared("novelty", lambda: _item_values(train))
    blocks = blocks_of(ctx)
    sums = prefix_sums(blocks, ItemCodes(blocks.recs.get_column(ITEM), items), values)
    columns = {}
    for k, total in sums.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            columns[metric_id("novelty", k)] = total[:, 0] / blocks.counts[k]
        columns[metric_id("novelty", k)][blocks.counts[k] == 0] = 0.0  # an empty list scores 0
    return PerUser(columns)


def _item_values(train: pl.DataFrame) -> tuple[pl.Series, np.ndarray]:
    """Train items and -log2((c_i + 1) / (N + 1)) per item, plus 0 popularity (the last row) for
    items outside train."""
    packed, keys = packing(train), packed_pairs(train)
    if packed is not None and keys is not None and train.height:
        # integer ids: the distinct (user, item) keys sorted in numpy, about 16 bytes a train
        # row; a polars unique of the pairs held 0.6-0.9 GiB more at 4.5M rows
        _, lo_item, width = packed
        distinct = np.sort(keys.to_numpy())  # np.unique took 6 s here (numpy 2.4), a sort 0.04
        distinct = distinct[np.append(True, distinct[1:] != distinct[:-1])]
        user = distinct // width
        n_users = int(np.count_nonzero(user[1:] != user[:-1])) + 1
        by_item = np.bincount(distinct % width)
        listed = np.flatnonzero(by_item)
        items = pl.Series(ITEM, listed + lo_item).cast(train.schema[ITEM])
        c = by_item[listed]
    else:
        pairs = train.select(USER, ITEM).unique()
        n_users = pairs.get_column(USER).n_unique()
        pop = pairs.group_by(ITEM).agg(pl.len().alias("c"))
        items, c = pop.get_column(ITEM), pop.get_column("c").to_numpy()
    counts = np.append(c.astype(np.float64), 0.0)  # the last row: items outside train
    return items, (-np.log2((counts + 1) / (n_users + 1)))[:, None]
