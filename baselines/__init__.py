"""Built-in recommenders, registered under ``harness.recommenders`` like any third-party plugin.

Every baseline derives from :class:`Baseline`, which owns what all of them share: popularity
ranking, the cold-user fallback, masking of seen items, and batched scoring so that peak memory
depends on the batch size, never on the number of users asked for. A subclass implements
``_fit(data)`` and either ``_score(rows)`` (a dense batch x items score matrix) or
``_recommend_rows(users, rows, k)`` (top-k arrays directly).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from harness.api import TrainData, batches, mask_seen, recommendations_frame, top_k

# Cells of a dense batch x items score matrix scored at once (float32: 4 bytes each): 128 MiB.
SCORE_CELLS = 1 << 25


class Baseline:
    """Shared machinery; subclasses set ``description`` and implement ``_fit`` and ``_score``."""

    description = ""
    #: items a model gives no evidence for (score <= 0) are ranked by popularity after the rest
    fill_popular = False

    exclude_seen: bool = True

    def fit(self, data: TrainData) -> Baseline:
        self.data = data
        self._fit_popularity(data.item_popularity.astype(np.float64))
        self._fit(data)
        return self

    def _fit(self, data: TrainData) -> None:  # pragma: no cover - overridden
        pass

    # -- popularity ------------------------------------------------------------------------
    def _fit_popularity(self, score: np.ndarray) -> None:
        """Rank items by ``score`` (desc, ties by index): the order cold users and fills use."""
        self._pop_score = score
        self._pop_order = np.lexsort((np.arange(len(score)), -score))
        rank = np.empty(len(score), dtype=np.int64)
        rank[self._pop_order] = np.arange(len(score))
        self._pop_rank = rank
        # in (-1, 0): below any positive model score, decreasing with popularity rank
        self._fallback = (-(rank + 1) / (len(score) + 1)).astype(np.float32)

    def _popular_rows(
        self, rows: np.ndarray, k: int, exclude: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k popular items per matrix row (-1: cold), skipping the row's seen items when
        ``exclude``. Returns (item indices, scores), padded with -1 / -inf."""
        n_items = len(self._pop_order)
        n = len(rows)
        idx = np.full((n, k), -1, dtype=np.int64)
        out = np.full((n, k), -np.inf, dtype=np.float64)
        if n == 0 or n_items == 0 or k <= 0:
            return idx, out
        matrix = self.data.matrix
        warm = rows >= 0
        nnz = np.zeros(n, dtype=np.int64)
        if exclude and warm.any():
            nnz[warm] = np.diff(matrix.indptr)[rows[warm]]
        width = int(min(n_items, k + nnz.max()))
        seen = np.zeros((n, width), dtype=bool)
        if exclude and warm.any():
            w = np.flatnonzero(warm)
            sub = matrix[rows[w]]
            r = np.repeat(w, np.diff(sub.indptr))
            rk = self._pop_rank[sub.indices]
            near = rk < width
            seen[r[near], rk[near]] = True
        ok = ~seen
        pos = np.cumsum(ok, axis=1)
        r, c = np.nonzero(ok & (pos <= k))
        items = self._pop_order[c]
        idx[r, pos[r, c] - 1] = items
        out[r, pos[r, c] - 1] = self._pop_score[items]
        return idx, out

    # -- recommending ----------------------------------------------------------------------
    def _batch_size(self) -> int:
        return max(1, SCORE_CELLS // max(self.data.n_items, 1))

    def _score(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _recommend_rows(self, users: pl.Series, rows: np.ndarray, k: int):
        """Top-k (item indices, scores) for warm matrix rows; pads are -inf."""
        scores = np.asarray(self._score(rows), dtype=np.float32)
        if self.fill_popular:
            scores = np.where(scores > 0, scores, self._fallback[None, :])
        if self.exclude_seen:
            mask_seen(scores, self.data.matrix, rows)
        return top_k(scores, k)

    def _recommend_cold(self, users: pl.Series, k: int):
        """Cold users (no train interactions): the most popular items."""
        return self._popular_rows(np.full(users.len(), -1), k, exclude=False)

    def recommend(self, users: pl.Series, k: int) -> pl.DataFrame:
        """Top-k per user, warm users scored in batches, cold users from popularity."""
        data = self.data
        users = pl.Series("user_id", users).unique(maintain_order=True)
        rows = data.user_index(users)
        warm = np.flatnonzero(rows >= 0)
        cold = np.flatnonzero(rows < 0)
        frames = []
        size = self._batch_size()
        for part in batches(len(warm), size):
            sel = warm[part]
            batch_users = users.gather(sel)
            idx, scores = self._recommend_rows(batch_users, rows[sel], k)
            frames.append(_frame(batch_users, idx, scores, data.item_ids))
        for part in batches(len(cold), size):
            batch_users = users.gather(cold[part])
            idx, scores = self._recommend_cold(batch_users, k)
            frames.append(_frame(batch_users, idx, scores, data.item_ids))
        if not frames:
            return pl.DataFrame(
                {
                    "user_id": users.head(0),
                    "item_id": data.item_ids.head(0),
                    "score": pl.Series([], dtype=pl.Float64),
                }
            )
        return pl.concat(frames, how="vertical")


def _frame(
    users: pl.Series, idx: np.ndarray, scores: np.ndarray, item_ids: pl.Series
) -> pl.DataFrame:
    """recommendations_frame, tolerant of -1 padding (its score is -inf, so it is dropped)."""
    scores = np.where(idx >= 0, scores, -np.inf)
    return recommendations_frame(users, np.maximum(idx, 0), scores, item_ids)


__all__ = ["Baseline", "SCORE_CELLS"]
