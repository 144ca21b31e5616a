"""Random items: the floor every other recommender must beat."""

from __future__ import annotations

import numpy as np
import polars as pl

from baselines import Baseline
from harness.api import mask_seen, top_k

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element (vectorised)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class RandomRecommender(Baseline):
    """Uniformly random items per user (weighted=true: sampled in proportion to popularity).

    Each user's list depends only on the seed and the user id (a counter-based hash), never on
    which other users are asked for or in what order.
    """

    description = "Random items per user; weighted=true samples by popularity (seeded)"

    def __init__(self, weighted: bool = False, exclude_seen: bool = True) -> None:
        self.weighted = weighted
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        self._seed = np.uint64(data.seed & 0xFFFFFFFFFFFFFFFF)
        self._log_weight = np.log(np.maximum(self._pop_score, 1.0)).astype(np.float64)

    def _keys(self, users: pl.Series) -> np.ndarray:
        """batch x items sort keys; the top k keys are a sample without replacement.

        Weighted sampling uses Efraimidis-Spirakis keys log(u) / w (equivalently u^(1/w)).
        """
        uh = users.hash(seed=int(self._seed % np.uint64(2**31))).to_numpy().astype(np.uint64)
        items = np.arange(self.data.n_items, dtype=np.uint64)
        with np.errstate(over="ignore"):
            x = _mix(uh[:, None] ^ _mix((items + self._seed) * _GOLDEN)[None, :])
        u = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # (0, 1)
        if self.weighted:
            return np.log(u) / np.exp(self._log_weight)[None, :]
        return u

    def _recommend_rows(self, users, rows, k):
        keys = self._keys(users)
        if self.exclude_seen:
            mask_seen(keys, self.data.matrix, rows)
        idx, vals = top_k(keys, k)
        return idx, vals

    def _recommend_cold(self, users, k):
        return self._recommend_rows(users, np.full(users.len(), -1), k)

    def _batch_size(self) -> int:
        return max(1, (1 << 23) // max(self.data.n_items, 1))  # float64 keys + uint64 hashes
