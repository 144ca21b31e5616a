"""Nearest-neighbour baselines: item-item (implicit's all-pairs kNN) and user-user cosine."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from baselines import Baseline

_WEIGHTINGS = ("cosine", "bm25", "tfidf")


def _implicit_knn(weighting: str, neighbours: int, threads: int, k1: float, b: float):
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

    if weighting == "bm25":
        return BM25Recommender(K=neighbours, K1=k1, B=b, num_threads=threads)
    cls = CosineRecommender if weighting == "cosine" else TFIDFRecommender
    return cls(K=neighbours, num_threads=threads)


class ItemKNNRecommender(Baseline):
    """Item-item nearest neighbours: score = the user's items times their k most similar items.

    Similarities from implicit (cosine, BM25 or TF-IDF weighting, ``neighbours`` per item); items
    with no similarity to anything the user has are ranked by popularity after the rest.
    """

    description = "Item-item kNN (cosine, bm25 or tfidf weighting) via implicit"
    fill_popular = True

    def __init__(
        self,
        neighbours: int = 50,
        weighting: str = "cosine",
        k1: float = 1.2,
        b: float = 0.75,
        exclude_seen: bool = True,
    ) -> None:
        if weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(_WEIGHTINGS)}, got {weighting!r}")
        if neighbours <= 0:
            raise ValueError(f"neighbours must be positive, got {neighbours}")
        self.neighbours = neighbours
        self.weighting = weighting
        self.k1 = k1
        self.b = b
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        model = _implicit_knn(self.weighting, self.neighbours, data.n_threads, self.k1, self.b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implicit.utils.ParameterWarning about float64 input
            model.fit(data.matrix.astype(np.float64), show_progress=False)
        self.similarity = model.similarity.astype(np.float32).tocsr()

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return (self.data.matrix[rows] @ self.similarity).toarray()


class UserKNNRecommender(Baseline):
    """User-user cosine neighbours: score = similarity-weighted items of the k nearest train users.

    Neighbours are searched per batch of query users with a sparse product against the train
    users sharing at least one item (never a dense users x users matrix). Items none of the
    neighbours has are ranked by popularity after the rest.
    """

    description = "User-user cosine kNN with per-batch sparse neighbour search"
    fill_popular = True

    #: sparse similarity entries computed per batch (bounds memory of the neighbour search)
    search_cells = 1 << 24

    def __init__(self, neighbours: int = 50, shrink: float = 0.0, exclude_seen: bool = True) -> None:
        if neighbours <= 0:
            raise ValueError(f"neighbours must be positive, got {neighbours}")
        self.neighbours = neighbours
        self.shrink = shrink
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        m = data.matrix.astype(np.float32)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self._normed = sp.csr_matrix(sp.diags(1.0 / norms).astype(np.float32) @ m)
        self._normed_t = self._normed.T.tocsr()
        self._norms = norms
        # upper bound of the co-user count of each user: sum of its items' popularity
        pop = data.item_popularity.astype(np.float64)
        binary = m.copy()
        binary.data[:] = 1.0
        self._co_users = np.asarray(binary @ pop).ravel()

    def _neighbours(self, rows: np.ndarray) -> sp.csr_matrix:
        """batch x train-users sparse matrix of the top ``neighbours`` cosine similarities."""
        sims = (self._normed[rows] @ self._normed_t).tocsr()
        # drop each user's similarity with itself
        r = np.repeat(np.arange(len(rows)), np.diff(sims.indptr))
        sims.data[sims.indices == rows[r]] = 0.0
        if self.shrink > 0:
            sims.data = sims.data * (1.0 / (1.0 + self.shrink / np.maximum(sims.data, 1e-12)))
        sims.eliminate_zeros()
        r = np.repeat(np.arange(len(rows)), np.diff(sims.indptr))
        order = np.lexsort((sims.indices, -sims.data, r))
        pos = np.arange(len(order)) - np.repeat(sims.indptr[:-1], np.diff(sims.indptr))
        keep = order[pos < self.neighbours]
        return sp.csr_matrix(
            (sims.data[keep], (r[keep], sims.indices[keep])), shape=sims.shape, dtype=np.float32
        )

    def _recommend_rows(self, users, rows, k):
        # split the batch further so the sparse similarity block stays bounded
        co = np.cumsum(self._co_users[rows])
        groups = np.floor(co / self.search_cells).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        stops = np.r_[starts[1:], len(rows)]
        parts = [super(UserKNNRecommender, self)._recommend_rows(None, rows[a:b], k)
                 for a, b in zip(starts, stops)]
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return (self._neighbours(rows) @ self.data.matrix).toarray()
