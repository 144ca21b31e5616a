"""Popularity baselines: the global top and each user's own most repeated items."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import numpy as np
import polars as pl

from baselines import Baseline
from harness.api import Bounds, Columns


class PopularRecommender(Baseline):
    """Most popular items in train (distinct users per item), the same list for everyone.

    ``window_days=N`` counts only interactions in the last N days before the split's cutoff (or
    before the last train timestamp when the split has none); items not seen in the window follow,
    by all-time popularity. Score: users in the window (+ a fraction < 1 from all-time popularity
    that breaks ties).
    """

    description = "Most popular items in train; window_days=N counts only the last N days"

    def __init__(
        self, window_days: Annotated[int | None, Bounds(ge=1)] = None, exclude_seen: bool = True
    ) -> None:
        if window_days is not None and window_days <= 0:
            raise ValueError(f"window_days must be positive, got {window_days}")
        self.window_days = window_days
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        if self.window_days is None:
            return
        frame = data.interactions
        ts = frame.get_column(Columns.TIMESTAMP)
        if ts.null_count() == ts.len():
            return  # no timestamps: every interaction counts
        end = data.cutoff if data.cutoff is not None else ts.max() + timedelta(microseconds=1)
        recent = frame.filter(pl.col(Columns.TIMESTAMP) >= end - timedelta(days=self.window_days))
        recent = recent.select(Columns.USER, Columns.ITEM).unique()
        cols = data.item_index(recent.get_column(Columns.ITEM))
        window = np.bincount(cols, minlength=data.n_items).astype(np.float64)
        alltime = self._pop_score
        self._fit_popularity(window + alltime / (alltime.max() + 1.0))

    def _recommend_rows(self, users, rows, k):
        return self._popular_rows(rows, k, exclude=self.exclude_seen)


class PersonalPopularRecommender(Baseline):
    """The user's own most repeated items (summed weights), then global popular to fill k.

    Recommending seen items is the point of this model, so ``exclude_seen`` defaults to False;
    with True it degrades to ``popular``. Scores: the user's summed weight for own items, and values
    in (-1, 0) for the popular fill, so one list is always sorted.
    """

    description = "The user's own most repeated items, then the most popular ones"

    def __init__(self, exclude_seen: bool = False) -> None:
        self.exclude_seen = exclude_seen

    def _recommend_rows(self, users, rows, k):
        n = len(rows)
        fill_idx, _ = self._popular_rows(rows, k, exclude=True)
        fill_score = np.where(fill_idx >= 0, self._fallback[np.maximum(fill_idx, 0)], -np.inf)
        if self.exclude_seen:
            return fill_idx, fill_score
        sub = self.data.matrix[rows]
        counts = np.diff(sub.indptr)
        row_of = np.repeat(np.arange(n), counts)
        # per row: highest weight first, ties by popularity rank
        order = np.lexsort((self._pop_rank[sub.indices], -sub.data, row_of))
        pos = np.arange(len(order)) - np.repeat(sub.indptr[:-1], counts)
        take = pos < k
        own = np.minimum(counts, k)
        idx = np.full((n, k), -1, dtype=np.int64)
        score = np.full((n, k), -np.inf, dtype=np.float64)
        idx[row_of[take], pos[take]] = sub.indices[order][take]
        score[row_of[take], pos[take]] = sub.data[order][take]
        # fill slot j >= own[u] with the (j - own[u])-th popular unseen item
        j = np.arange(k)[None, :]
        src = np.clip(j - own[:, None], 0, k - 1)
        gap = j >= own[:, None]
        idx = np.where(gap, np.take_along_axis(fill_idx, src, axis=1), idx)
        score = np.where(gap, np.take_along_axis(fill_score, src, axis=1), score)
        return idx, score
