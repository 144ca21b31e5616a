"""Catalogue metrics: one value per segment, from how often each train item is recommended."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.metrics.registry import Context, family, metric_id

USER, ITEM = Columns.USER, Columns.ITEM


def coverage(counts: np.ndarray, n_items: int) -> float:
    """coverage@k = distinct train items across all lists cut at k / items in train.
    Recommended items outside the catalogue count for accuracy, not here."""
    return float((counts > 0).sum()) / n_items


def gini(counts: np.ndarray) -> float:
    """gini@k = sum_i (2i - n - 1) x_i / (n sum_i x_i), x sorted ascending over all n train items,
    x_i how often item i is recommended (0 = equal exposure; 0 when nothing is recommended)."""
    x = np.sort(counts).astype(np.float64)
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


CHUNK = 1 << 20  # rows per bincount: small temporaries stay reused instead of touching fresh GiBs


def _item_codes(ctx: Context, items: pl.Series) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(ids or codes of the list rows, offset to subtract from them, code of each catalogue item,
    number of codes). Integer ids in a modest range are their own codes (id - min of the listed
    ids); other ids are looked up in the catalogue, and rows outside it share one extra code."""
    listed = ctx.recs.get_column(ITEM)
    if listed.dtype.is_integer() and items.dtype.is_integer() and listed.len():
        lo, hi = int(listed.min()), int(listed.max())
        if (hi - lo + 1) * len(ctx.ks) <= 1 << 24:
            # catalogue items no list reaches share the spare code hi - lo + 1, never counted
            spare = hi - lo + 1
            catalogue = np.array((items.cast(pl.Int64) - lo).to_numpy())
            catalogue[(catalogue < 0) | (catalogue >= spare)] = spare
            return listed.to_numpy(), lo, catalogue, spare + 1
    n = items.len()
    codes = listed.replace_strict(items, pl.int_range(0, n, dtype=pl.Int64, eager=True),
                                  default=n, return_dtype=pl.Int64)
    return codes.to_numpy(), 0, np.arange(n), n + 1


def exposure(ctx: Context, items: pl.Series) -> np.ndarray:
    """counts[segment, catalogue item, j]: how often each catalogue item appears within the first
    ks[j] places of the lists of warm (segment 0) and cold (1) users; items the lists never
    reach count 0. One bincount per chunk of rows (a group-by over 100M rows costs several
    times more, and whole-column temporaries cost about 2 s per fresh GiB here)."""
    nk = len(ctx.ks)
    codes, lo, catalogue, n_codes = _item_codes(ctx, items)
    # ranks are cut at max(ks): j = the smallest cut-off that includes the rank
    first_k = np.searchsorted(np.asarray(ctx.ks), np.arange(ctx.ks[-1] + 1))
    ranks = ctx.recs.get_column("rank").to_numpy()
    cold_ids = ctx.users.filter(pl.col("segment") == "cold").get_column(USER)
    cold = (ctx.recs.get_column(USER).is_in(cold_ids.implode()).to_numpy() if cold_ids.len()
            else None)
    size = 2 * n_codes * nk
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(codes), CHUNK):
        part = slice(start, start + CHUNK)
        cell = (codes[part].astype(np.int64) - lo) * nk + first_k[ranks[part]]
        if cold is not None:
            cell += cold[part] * (n_codes * nk)
        counts += np.bincount(cell, minlength=size)
    counts = counts.reshape(2, n_codes, nk)[:, catalogue, :]
    return counts.cumsum(axis=2)


@family("catalog", ("coverage", "gini"))
def catalog(ctx: Context) -> dict | None:
    """Coverage and Gini per segment over the lists of that segment's truth users."""
    if ctx.train is None:
        ctx.notices.append("coverage and gini skipped: no train items (catalogue)")
        return None
    items = ctx.train.get_column(ITEM).cast(ctx.recs.schema[ITEM], strict=False).drop_nulls().unique()
    counts = exposure(ctx, items)
    out = {}
    for segment, table in (("all", counts.sum(axis=0)), ("warm", counts[0]), ("cold", counts[1])):
        out[segment] = {}
        for j, k in enumerate(ctx.ks):
            out[segment][metric_id("coverage", k)] = coverage(table[:, j], items.len())
            out[segment][metric_id("gini", k)] = gini(table[:, j])
    return out
