"""Accuracy metrics over the ranked list (DESIGN.md, "Metric definitions").

Notation: U truth users; R_u relevant items, n_u = |R_u|; L_u the list cut at k; hit_i = 1 when the
i-th item of L_u is in R_u. One pair lookup marks the hits of the lists cut at max(k); every k then
comes from the hit rows only (a recommended item not in the truth contributes nothing), in numpy:
a user's hits are contiguous and in rank order, so "hits within k" is a prefix of them."""

from __future__ import annotations

import math

import numpy as np

from harness.api import Columns
from harness.metrics.registry import Context, PerUser, family, metric_id
from harness.pairs import block_hits

ITEM = Columns.ITEM


def precision(c, n, k, sums):
    """precision@k = sum(hit_i, i<=k) / k"""
    return c / k


def recall(c, n, k, sums):
    """recall@k = sum(hit_i, i<=k) / n_u"""
    return c / n


def map_(c, n, k, sums):
    """map@k = sum(hit_i * precision@i, i<=k) / min(n_u, k)"""
    return sums["map"](c) / np.minimum(n, k)


def ndcg(c, n, k, sums):
    """ndcg@k = sum(hit_i / log2(i+1), i<=k) / sum(1 / log2(i+1), i<=min(n_u, k))"""
    return sums["ndcg"](c) / _ideal(k)[np.minimum(n, k).astype(np.int64)]


def mrr(c, n, k, sums):
    """mrr@k = 1 / (rank of the first hit within k), 0 when there is none (hits come in rank
    order, so a hit within k means the first hit is within k)"""
    return np.where(c > 0, 1.0 / sums["first"], 0.0)


def hit_rate(c, n, k, sums):
    """hit_rate@k = 1 when sum(hit_i, i<=k) > 0, else 0"""
    return (c > 0).astype(np.float64)


METRICS = {
    "precision": precision,
    "recall": recall,
    "map": map_,
    "ndcg": ndcg,
    "mrr": mrr,
    "hit_rate": hit_rate,
}


def _ideal(k: int) -> np.ndarray:
    """ideal[m] = sum(1 / log2(i+1), i<=m) for m = 0..k"""
    ideal = [0.0]
    for i in range(1, k + 1):
        ideal.append(ideal[-1] + 1.0 / math.log2(i + 1))
    return np.array(ideal)


def _prefix_sums(values: np.ndarray, first: np.ndarray):
    """c -> for each block b, the sum of values[first[b] : first[b] + c[b]] (0 when c[b] is 0),
    each a sum over that block's rows alone (so it does not depend on how the lists are chunked)."""
    padded = np.append(values, 0.0)

    def sums(c: np.ndarray) -> np.ndarray:
        if not len(c):
            return np.zeros(0)
        bounds = np.empty(2 * len(c), dtype=np.int64)
        bounds[0::2], bounds[1::2] = first, first + c
        return np.where(c > 0, np.add.reduceat(padded, bounds)[0::2], 0.0)

    return sums


@family("ranking", tuple(METRICS))
def ranking(ctx: Context) -> PerUser:
    """Per-user accuracy values ``name@k`` for the chunk's users (0 without a hit)."""
    starts = ctx.starts
    n = ctx.users.get_column("n").to_numpy()
    rows = block_hits(
        ctx.recs.get_column(ITEM),
        starts,
        ctx.truth.get_column(ITEM),
        np.append(0, np.cumsum(n)),
    )
    n_blocks = len(starts) - 1
    rank = ctx.recs.get_column("rank").to_numpy()[rows].astype(np.int64)
    block = np.searchsorted(starts, rows, side="right") - 1  # ascending: blocks in row order
    first = np.searchsorted(block, np.arange(n_blocks + 1))  # hits of block b: first[b]:first[b+1]
    hits_so_far = np.arange(len(rows)) - first[block] + 1
    code = block * (ctx.ks[-1] + 1) + rank  # ascending too: each block's rows are in rank order
    first_rank = np.ones(n_blocks)  # rank of each block's first hit (1 where there is none)
    has_hit = first[:-1] < first[1:]
    first_rank[has_hit] = rank[first[:-1][has_hit]]
    sums = {
        "map": _prefix_sums(hits_so_far / rank, first[:-1]),
        "ndcg": _prefix_sums(1.0 / np.log2(rank + 1.0), first[:-1]),
        "first": first_rank,
    }
    n = n.astype(np.float64)
    columns = {}
    for k in ctx.ks:
        c = (
            np.searchsorted(code, np.arange(n_blocks) * (ctx.ks[-1] + 1) + k, side="right")
            - first[:-1]
        )
        for name, fn in METRICS.items():
            columns[metric_id(name, k)] = np.asarray(fn(c, n, k, sums), dtype=np.float64)
    return PerUser(columns)
