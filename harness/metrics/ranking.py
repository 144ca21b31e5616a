"""Accuracy metrics over the ranked list (DESIGN.md, "Metric definitions").

Notation: U truth users; R_u relevant items, n_u = |R_u|; L_u the list cut at k; hit_i = 1 when the
i-th item of L_u is in R_u. One pass over the lists cut at max(k) finds each user's hit rows
(:func:`harness.pairs.block_hits`); the scorer keeps only their ranks (:class:`Parts`), and every
value at every k derives from those when read: a recommended item not in the truth contributes
nothing, and a user's hits come in rank order, so "hits within k" is a prefix of them."""

from __future__ import annotations

import math

import numpy as np

from harness.api import Columns
from harness.metrics.registry import Context, Parts, family, metric_id
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


@family("ranking", tuple(METRICS))
def ranking(ctx: Context) -> Parts:
    """Per-user accuracy values ``name@k`` for the chunk's users (0 without a hit), kept as the
    ranks of each user's hits within max(k) (:class:`Parts`): every value derives from them."""
    n = ctx.users.get_column("n").to_numpy()
    rows = block_hits(
        ctx.recs.get_column(ITEM),
        ctx.starts,
        ctx.truth.get_column(ITEM),
        np.append(0, np.cumsum(n)),
    )
    block = np.searchsorted(ctx.starts, rows, side="right") - 1  # ascending: blocks in row order
    counts = np.bincount(block, minlength=len(ctx.starts) - 1).astype(np.int32)
    # ranks <= max(k) <= 10000 (the k cap) fit 16 bits
    rank = ctx.recs.get_column("rank").to_numpy()[rows].astype(np.int16)
    ks = ctx.ks
    return Parts(
        counts,
        {"rank": rank},
        lambda counts, parts, n, ids: _values(counts, parts["rank"], n, ids, ks),
    )


def _values(counts: np.ndarray, rank: np.ndarray, n: np.ndarray, ids, ks) -> dict[str, np.ndarray]:
    """The metric values ``ids`` (``name@k``) of users with ``counts`` hits at ranks ``rank``
    (each user's in rank order, users one after another) and ``n`` relevant items. Sums run
    over each user's hits in rank order (bincount adds in index order), as every engine adds."""
    users = len(counts)
    block = np.repeat(np.arange(users), counts)
    first_hit = np.cumsum(counts) - counts  # position of each user's first hit
    rank = rank.astype(np.int64)
    hits_so_far = np.arange(len(rank)) - first_hit[block] + 1
    first = np.ones(users)  # rank of each user's first hit (1 where there is none)
    first[counts > 0] = rank[first_hit[counts > 0]]
    gain = _gain(ks[-1])[rank]
    precision_at_hit = hits_so_far / rank
    n = n.astype(np.float64)
    out = {}
    for k in ks:
        wanted = [name for name in METRICS if metric_id(name, k) in ids]
        if not wanted:
            continue
        within = rank <= k
        at = block[within]
        c = np.bincount(at, minlength=users)
        sums = {
            "map": np.bincount(at, weights=precision_at_hit[within], minlength=users),
            "ndcg": np.bincount(at, weights=gain[within], minlength=users),
            "first": first,
        }
        for name in wanted:
            out[metric_id(name, k)] = np.asarray(METRICS[name](c, n, k, sums), dtype=np.float64)
    return out


def _gain(k: int) -> np.ndarray:
    """gain[rank] = 1 / log2(rank + 1) for rank 0..k (0 unused)."""
    return np.append(0.0, 1.0 / np.log2(np.arange(1, k + 1) + 1.0))
