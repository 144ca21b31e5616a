"""Accuracy metrics over the ranked list (DESIGN.md, "Metric definitions").

Notation: U truth users; R_u relevant items, n_u = |R_u|; L_u the list cut at k; hit_i = 1 when the
i-th item of L_u is in R_u. All k come from one group-by over the hit rows only (a recommended
item not in the truth contributes nothing), so the cost is one pair lookup of lists cut at max(k)."""

from __future__ import annotations

import math

import polars as pl

from harness.api import Columns
from harness.pairs import rows_in
from harness.metrics.registry import Context, family, metric_id

USER = Columns.USER
RANK = pl.col("rank")
HITS_SO_FAR = pl.col("hits_so_far")


def within(k: int) -> pl.Expr:
    """hit_i restricted to i <= k, as 0.0/1.0 (the rows aggregated are hits only). Multiplying
    instead of filtering keeps every aggregation on the group-by's fast path."""
    return (RANK <= k).cast(pl.Float64)


def precision(k: int):
    """precision@k = sum(hit_i, i<=k) / k"""
    return within(k).sum(), lambda agg, n: agg / k


def recall(k: int):
    """recall@k = sum(hit_i, i<=k) / n_u"""
    return within(k).sum(), lambda agg, n: agg / n


def map_(k: int):
    """map@k = sum(hit_i * precision@i, i<=k) / min(n_u, k)"""
    return (within(k) * HITS_SO_FAR / RANK).sum(), lambda agg, n: agg / pl.min_horizontal(n, k)


def ndcg(k: int):
    """ndcg@k = sum(hit_i / log2(i+1), i<=k) / sum(1 / log2(i+1), i<=min(n_u, k))"""
    ideal = [0.0]
    for i in range(1, k + 1):
        ideal.append(ideal[-1] + 1.0 / math.log2(i + 1))
    def final(agg, n):
        m = pl.min_horizontal(n, k)
        return agg / m.replace_strict(list(range(k + 1)), ideal, return_dtype=pl.Float64)
    return (within(k) / (RANK + 1).cast(pl.Float64).log(2)).sum(), final


def mrr(k: int):
    """mrr@k = 1 / (rank of the first hit within k), 0 when there is none"""
    return (within(k) / RANK.cast(pl.Float64)).max(), lambda agg, n: agg


def hit_rate(k: int):
    """hit_rate@k = 1 when sum(hit_i, i<=k) > 0, else 0"""
    return within(k).max(), lambda agg, n: agg


METRICS = {"precision": precision, "recall": recall, "map": map_, "ndcg": ndcg, "mrr": mrr,
           "hit_rate": hit_rate}


@family("ranking", tuple(METRICS))
def ranking(ctx: Context) -> pl.DataFrame:
    """Per-user accuracy columns ``name@k`` for every truth user (0 without a list or a hit)."""
    hits = (rows_in(ctx.recs, ctx.truth, ctx.pair_key)
            .select(USER, "rank")
            .sort(USER, "rank")
            .with_row_index("row")
            # hits so far = position within the user's run of rows (cheaper than a window .over)
            .with_columns(pl.when(pl.col(USER).ne_missing(pl.col(USER).shift(1)))
                          .then(pl.col("row")).forward_fill().alias("first"))
            .with_columns((pl.col("row") - pl.col("first") + 1).alias("hits_so_far")))
    aggs, finals = [], []
    for name, fn in METRICS.items():
        for k in ctx.ks:
            col = metric_id(name, k)
            agg, final = fn(k)
            aggs.append(agg.cast(pl.Float64).alias(col))
            finals.append((col, final))
    per_user = hits.group_by(USER).agg(aggs)
    out = ctx.users.select(USER, "n").join(per_user, on=USER, how="left", maintain_order="left")
    out = out.with_columns(pl.col(c).fill_null(0.0) for c, _ in finals)
    return out.select(USER, *(final(pl.col(c), pl.col("n")).cast(pl.Float64).alias(c)
                              for c, final in finals))
