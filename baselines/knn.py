"""Nearest-neighbour baselines: item-item (implicit's all-pairs kNN) and user-user cosine."""

from __future__ import annotations

import warnings
from typing import Annotated

import numpy as np
import polars as pl
import scipy.sparse as sp

from baselines import Baseline
from harness.api import Bounds

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
        neighbours: Annotated[int, Bounds(ge=1)] = 50,
        weighting: str = "cosine",
        k1: Annotated[float, Bounds(ge=0)] = 1.2,
        b: Annotated[float, Bounds(ge=0, le=1)] = 0.75,
        exclude_seen: bool = True,
    ) -> None:
        if weighting not in _WEIGHTINGS:
            raise ValueError(
                f"weighting must be one of {', '.join(_WEIGHTINGS)}, got {weighting!r}"
            )
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


def row_top(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of each row of a CSR matrix (entries keep their order)."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= n:
        return m
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    frame = pl.DataFrame({"r": rows, "v": m.data}).with_row_index("i")
    keep = frame.group_by("r").agg(pl.col("i").top_k_by("v", n)).get_column("i").explode()
    keep = np.sort(keep.to_numpy())
    return sp.csr_matrix(
        (m.data[keep], m.indices[keep], np.r_[0, np.cumsum(np.minimum(counts, n))]), shape=m.shape
    )


class UserKNNRecommender(Baseline):
    """User-user cosine neighbours: score = similarity-weighted items of the k nearest train users.

    Neighbour search is a sparse product of each batch of query users with an inverted index
    (item -> users), never a dense users x users matrix. ``max_postings`` bounds the cost at scale:
    each item's posting list keeps the users with the largest normalised weight for it (those who
    contribute most to a cosine), so a very popular item adds at most that many candidates;
    0 keeps every posting (exact cosine kNN). Items none of the neighbours has are ranked by
    popularity after the rest.
    """

    description = "User-user cosine kNN; neighbour search over an item->users index"
    fill_popular = True

    #: similarity entries computed per sub-batch (bounds memory of the neighbour search)
    search_cells = 1 << 23

    def __init__(
        self,
        neighbours: Annotated[int, Bounds(ge=1)] = 50,
        max_postings: Annotated[int, Bounds(ge=0)] = 1000,
        shrink: Annotated[float, Bounds(ge=0)] = 0.0,
        exclude_seen: bool = True,
    ) -> None:
        if neighbours <= 0:
            raise ValueError(f"neighbours must be positive, got {neighbours}")
        if max_postings < 0:
            raise ValueError(f"max_postings must be >= 0, got {max_postings}")
        self.neighbours = neighbours
        self.max_postings = max_postings
        self.shrink = shrink
        self.exclude_seen = exclude_seen

    def _fit(self, data) -> None:
        m = data.matrix
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self._normed = sp.csr_matrix(sp.diags((1.0 / norms).astype(np.float32)) @ m)
        index = self._normed.T.tocsr()
        if self.max_postings:
            index = row_top(index, self.max_postings)
        self._index = index
        # cost of a query user: postings touched = sum over its items of the posting lengths
        binary = self._normed.copy()
        binary.data[:] = 1.0
        self._cost = np.asarray(binary @ np.diff(index.indptr).astype(np.float64)).ravel()

    def _neighbours(self, rows: np.ndarray) -> sp.csr_matrix:
        """batch x train-users sparse matrix of the top ``neighbours`` cosine similarities."""
        sims = (self._normed[rows] @ self._index).tocsr()
        r = np.repeat(np.arange(len(rows)), np.diff(sims.indptr))
        sims.data[sims.indices == rows[r]] = 0.0  # a user is not its own neighbour
        if self.shrink > 0:
            overlap = sims.data  # cosine shrunk towards 0 (Koren 2008 style, on the similarity)
            sims.data = overlap * (overlap / (overlap + self.shrink))
        sims.eliminate_zeros()
        return row_top(sims, self.neighbours)

    def _recommend_rows(self, users, rows, k):
        # split the batch further so that each sparse similarity block stays bounded
        groups = np.floor(np.cumsum(self._cost[rows]) / self.search_cells).astype(np.int64)
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        stops = np.r_[starts[1:], len(rows)]
        parts = [Baseline._recommend_rows(self, None, rows[a:b], k) for a, b in zip(starts, stops)]
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return (self._neighbours(rows) @ self.data.matrix).toarray()
