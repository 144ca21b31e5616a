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
from harness.pairs import PACKABLE, block_hits, compiled, id_range

ITEM = Columns.ITEM


def precision(c, n, k, sums):
    """precision@k = sum(hit_i, i<=k) / k"""
    return c / k


def recall(c, n, k, sums):
    """recall@k = sum(hit_i, i<=k) / n_u"""
    return c / n


def map_(c, n, k, sums):
    """map@k = sum(hit_i * precision@i, i<=k) / min(n_u, k)"""
    return sums["map"] / np.minimum(n, k)


def ndcg(c, n, k, sums):
    """ndcg@k = sum(hit_i / log2(i+1), i<=k) / sum(1 / log2(i+1), i<=min(n_u, k))"""
    return sums["ndcg"] / _ideal(k)[np.minimum(n, k).astype(np.int64)]


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
    n = ctx.users.get_column("n").to_numpy()
    counts = _compiled_counts(ctx, n) or _counts(ctx, n)
    n = n.astype(np.float64)
    columns = {}
    for j, k in enumerate(ctx.ks):
        c, sums = counts(j)
        for name, fn in METRICS.items():
            columns[metric_id(name, k)] = np.asarray(fn(c, n, k, sums), dtype=np.float64)
    return PerUser(columns)


def _compiled_counts(ctx: Context, n: np.ndarray):
    """j -> (hits within ks[j], sums) per block from one compiled pass over the rows
    (:func:`harness.kernels.block_hits`), for integer item ids over a range it indexes; None
    otherwise (:func:`harness.pairs.compiled`)."""
    items, truth_items = ctx.recs.get_column(ITEM), ctx.truth.get_column(ITEM)
    span = id_range(truth_items)
    # UInt64 items would mix with the signed lowest id into floats inside the kernel
    packable = items.dtype in PACKABLE and truth_items.dtype in PACKABLE
    if not packable or span is None or not compiled(items.len(), *span):
        return None
    from harness.kernels import block_hits as compiled_block_hits

    ks = np.asarray(ctx.ks, dtype=np.int64)
    hits, dcg, ap, first = compiled_block_hits(
        items.to_numpy(),
        ctx.recs.get_column("rank").to_numpy(),
        ctx.starts,
        truth_items.to_numpy(),
        np.append(0, np.cumsum(n)).astype(np.int64),
        ks,
        _gain(int(ks[-1])),
        span[0],
        np.zeros(span[1] - span[0] + 1, dtype=np.int32),
    )
    first_rank = np.where(first > 0, first, 1).astype(np.float64)
    return lambda j: (hits[:, j], {"map": ap[:, j], "ndcg": dcg[:, j], "first": first_rank})


def _gain(k: int) -> np.ndarray:
    """gain[rank] = 1 / log2(rank + 1) for rank 0..k (0 unused), as numpy computes it."""
    return np.append(0.0, 1.0 / np.log2(np.arange(1, k + 1) + 1.0))


def _counts(ctx: Context, n: np.ndarray):
    """j -> (hits within ks[j], sums) per block, in numpy: one pair lookup marks the hit rows."""
    starts = ctx.starts
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
    map_sums = _prefix_sums(hits_so_far / rank, first[:-1])
    ndcg_sums = _prefix_sums(1.0 / np.log2(rank + 1.0), first[:-1])
    base = np.arange(n_blocks) * (ctx.ks[-1] + 1)

    def counts(j: int):
        c = np.searchsorted(code, base + ctx.ks[j], side="right") - first[:-1]
        return c, {"map": map_sums(c), "ndcg": ndcg_sums(c), "first": first_rank}

    return counts
