"""Catalogue metrics: one value per segment, from how often each train item is recommended."""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import Columns
from harness.metrics.lists import ItemCodes
from harness.metrics.registry import Context, Totals, family, metric_id
from harness.pairs import PACKABLE, compiled, id_range

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
DENSE_CELLS = 1 << 22  # counts by item id (not catalogue code) up to this many cells (32 MB)


def exposure(ctx: Context, items: pl.Series) -> np.ndarray:
    """counts[segment, catalogue item + 1, j]: how often each item of ``items`` (distinct) is
    listed at a rank that ks[j] is the smallest cut-off to include, in the lists of warm (segment
    0) and cold (1) users of this chunk; the last item row counts listed items outside the
    catalogue. Integer ids over a narrow range: one compiled pass over the rows counting by item
    id (:func:`harness.kernels.exposure`); other ids: one bincount per slice of catalogue codes
    (a group-by over 100M rows costs several times more, and whole-column temporaries cost about
    2 s per fresh GiB here)."""
    nk = len(ctx.ks)
    n_codes = items.len() + 1
    # ranks are cut at max(ks): j = the smallest cut-off that includes the rank
    first_k = np.searchsorted(np.asarray(ctx.ks), np.arange(ctx.ks[-1] + 1))
    ranks = ctx.recs.get_column("rank").to_numpy()
    block_cold = (ctx.users.get_column("segment") == "cold").to_numpy()
    span = id_range(ctx.recs.get_column(ITEM), items)
    if (
        span is not None
        and 2 * nk * (span[1] - span[0] + 1) <= DENSE_CELLS
        and ctx.recs.schema[ITEM] in PACKABLE
        and compiled(len(ranks), *span)
    ):
        return _dense_exposure(ctx, items, span, ranks, first_k, block_cold)
    cold = np.repeat(block_cold, np.diff(ctx.starts)) if block_cold.any() else None
    codes = ItemCodes(ctx.recs.get_column(ITEM), items)
    size = 2 * n_codes * nk
    counts = np.zeros(size, dtype=np.int64)
    for start in range(0, len(ranks), CHUNK):
        stop = min(start + CHUNK, len(ranks))
        cell = codes(start, stop).astype(np.int64) * nk + first_k[ranks[start:stop]]
        if cold is not None:
            cell += cold[start:stop] * (n_codes * nk)
        counts += np.bincount(cell, minlength=size)
    return counts.reshape(2, n_codes, nk)


def _dense_exposure(
    ctx: Context,
    items: pl.Series,
    span: tuple[int, int],
    ranks: np.ndarray,
    first_k: np.ndarray,
    block_cold: np.ndarray,
) -> np.ndarray:
    """:func:`exposure` for integer ids over a narrow range: counts by (segment, cut-off, item
    id - lowest id) cells (DENSE_CELLS at most), the id itself as the index (no lookup of each
    row's catalogue code), then the catalogue's ids are read out."""
    from harness.kernels import exposure as count_exposure

    nk = int(first_k[-1]) + 1
    lo, width = span[0], span[1] - span[0] + 1
    by_id = np.zeros((2, nk, width), dtype=np.int64)
    count_exposure(
        ctx.recs.get_column(ITEM).to_numpy(), ranks, ctx.starts, block_cold, first_k, lo, by_id
    )
    out = np.empty((2, items.len() + 1, nk), dtype=np.int64)
    out[:, :-1, :] = by_id[:, :, items.to_numpy().astype(np.int64) - lo].transpose(0, 2, 1)
    # listed items outside the catalogue: all listed rows less the catalogue's (ids distinct)
    out[:, -1, :] = by_id.sum(axis=2) - out[:, :-1, :].sum(axis=1)
    return out


@family("catalog", ("coverage", "gini"))
def catalog(ctx: Context) -> Totals | None:
    """Coverage and Gini per segment over the lists of that segment's truth users: exposure
    counts add up over chunks, the values come from the totals."""
    train = ctx.train
    if train is None:
        ctx.note("coverage and gini skipped: no train items (catalogue)")
        return None
    items = ctx.prepared(
        "catalog",
        lambda: (
            train.get_column(ITEM).cast(ctx.recs.schema[ITEM], strict=False).drop_nulls().unique()
        ),
    )
    return Totals(exposure(ctx, items), lambda counts: _values(counts, items.len(), ctx.ks))


def _values(counts: np.ndarray, n_items: int, ks) -> dict:
    counts = counts[:, :-1, :].cumsum(axis=2)  # within ks[j]; items outside the catalogue dropped
    out: dict[str, dict[str, float]] = {}
    for segment, table in (("all", counts.sum(axis=0)), ("warm", counts[0]), ("cold", counts[1])):
        out[segment] = {}
        for j, k in enumerate(ks):
            out[segment][metric_id("coverage", k)] = coverage(table[:, j], n_items)
            out[segment][metric_id("gini", k)] = gini(table[:, j])
    return out
