"""Novelty: how unexpected the recommended items are, from train popularity."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.metrics.lists import ItemCodes, blocks_of, prefix_sums
from harness.metrics.registry import Context, PerUser, family, metric_id

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
    pairs = train.select(USER, ITEM).unique()
    n_users = pairs.get_column(USER).n_unique()
    pop = pairs.group_by(ITEM).agg(pl.len().alias("c"))
    counts = np.append(pop.get_column("c").to_numpy().astype(np.float64), 0.0)  # last: unseen
    return pop.get_column(ITEM), (-np.log2((counts + 1) / (n_users + 1)))[:, None]
