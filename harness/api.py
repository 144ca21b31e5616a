"""The plugin contract: everything a recommender author needs, in one file.

A recommender is any class (or factory) registered under the entry-point group
``harness.recommenders``. The harness calls it with the keyword parameters given on the command
line (``-p factors=64``), converted to the types of its ``__init__`` signature, then::

    model.fit(data)                  # data: TrainData, the training part only
    model.recommend(users, k)        # -> polars DataFrame: user_id, item_id, score (higher first)

``users`` holds warm and cold users alike (cold: no interactions in ``data``). A recommender
should return at most ``k`` distinct items per user; fewer are allowed and reported. After one
``fit``, ``recommend`` is called once per batch of up to 100k users (disjoint batches), so that no
process holds every list at once; each user's rows should come contiguous, best first.
Both calls run in a worker process that never sees the truth or the database.

Optional class attributes: ``description`` (one line for ``harness list``; defaults to the first
line of the class docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import polars as pl

if TYPE_CHECKING:
    import scipy.sparse as sp

ENTRY_POINT_GROUP = "harness.recommenders"


class Columns:
    """Column names shared by every table the harness reads or writes."""

    USER = "user_id"
    ITEM = "item_id"
    TIMESTAMP = "timestamp"
    WEIGHT = "weight"
    SCORE = "score"
    RANK = "rank"
    CATEGORIES = "categories"


@dataclass
class TrainData:
    """The training part of a split, as a recommender sees it.

    Attributes:
        interactions: user_id, item_id, timestamp (Datetime, null when the dataset has no time),
            weight (Float32, 1.0 unless the dataset says otherwise) and the dataset's extra columns.
        users: user feature table keyed by user_id (may cover cold users), or None.
        items: item feature table keyed by item_id (may hold a ``categories`` list column), or None.
        cutoff: the split's cutoff time: nothing at or after it is in ``interactions``; None for
            splits without a single cutoff (per-user or random splits).
        seed: seed for every random choice the model makes.
        n_threads: cores the model may use.
    """

    interactions: pl.DataFrame
    users: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    cutoff: datetime | None = None
    seed: int = 0
    n_threads: int = 1

    # -- dense index maps -------------------------------------------------------------------
    @cached_property
    def user_ids(self) -> pl.Series:
        """Distinct train users, sorted; position i is row i of :attr:`matrix`."""
        return self.interactions.get_column(Columns.USER).unique().sort()

    @cached_property
    def item_ids(self) -> pl.Series:
        """Distinct train items, sorted; position j is column j of :attr:`matrix`."""
        return self.interactions.get_column(Columns.ITEM).unique().sort()

    @property
    def n_users(self) -> int:
        return self.user_ids.len()

    @property
    def n_items(self) -> int:
        return self.item_ids.len()

    def user_index(self, users: pl.Series) -> np.ndarray:
        """Dense row of each user in :attr:`matrix`; -1 for users without train interactions."""
        return _lookup(self.user_ids, users)

    def item_index(self, items: pl.Series) -> np.ndarray:
        """Dense column of each item in :attr:`matrix`; -1 for items not in train."""
        return _lookup(self.item_ids, items)

    @cached_property
    def matrix(self) -> "sp.csr_matrix":
        """users x items CSR matrix (float32) of summed interaction weights."""
        import scipy.sparse as sp

        rows = self.user_index(self.interactions.get_column(Columns.USER))
        cols = self.item_index(self.interactions.get_column(Columns.ITEM))
        weights = self.interactions.get_column(Columns.WEIGHT).cast(pl.Float32).to_numpy()
        m = sp.csr_matrix(
            (weights, (rows, cols)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        m.sum_duplicates()
        return m

    @cached_property
    def item_popularity(self) -> np.ndarray:
        """Distinct train users per item, aligned with :attr:`item_ids`."""
        return np.diff(self.matrix.tocsc().indptr).astype(np.int64)


@runtime_checkable
class Recommender(Protocol):
    """What the harness calls. ``recommend`` returns columns user_id, item_id, score."""

    def fit(self, data: TrainData) -> None: ...

    def recommend(self, users: pl.Series, k: int) -> pl.DataFrame: ...


# -- helpers every model needs -------------------------------------------------------------


def _lookup(ids: pl.Series, values: pl.Series) -> np.ndarray:
    """Positions of ``values`` in the sorted, distinct ``ids``; -1 where absent (vectorised)."""
    values = values.cast(ids.dtype, strict=False) if values.dtype != ids.dtype else values
    keys = ids.to_numpy()
    vals = values.to_numpy()
    if keys.dtype.kind in "iuf" and vals.dtype.kind in "iuf":
        pos = np.searchsorted(keys, vals)
        pos = np.clip(pos, 0, max(len(keys) - 1, 0))
        found = (len(keys) > 0) & (keys[pos] == vals) if len(keys) else np.zeros(len(vals), bool)
        return np.where(found, pos, -1).astype(np.int64)
    frame = pl.DataFrame({"id": ids, "pos": pl.int_range(ids.len(), dtype=pl.Int64, eager=True)})
    joined = pl.DataFrame({"id": values}).join(frame, on="id", how="left", maintain_order="left")
    return joined.get_column("pos").fill_null(-1).to_numpy()


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a dense (batch x items) score matrix, best first.

    Returns (indices, scores). Entries of -inf are never selected before finite ones; callers drop
    them with ``np.isfinite``. Ties keep the lower index first (stable).
    """
    k = min(k, scores.shape[1])
    if k <= 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(scores.dtype)
    # The k-th largest score per row; everything above it is in, and ties at it are filled by
    # lowest index (argpartition alone would pick tied items arbitrarily).
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | tied
    # Only rows with more ties than room need the (slow) running count.
    crowded = np.flatnonzero(tied.sum(axis=1) > room[:, 0])
    if crowded.size:
        sub_tied = tied[crowded]
        keep = sub_tied & (np.cumsum(sub_tied, axis=1, dtype=np.int32) <= room[crowded])
        chosen[crowded] = above[crowded] | keep
    part = np.nonzero(chosen)[1].reshape(scores.shape[0], k)
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: primary key descending score, secondary key ascending index (deterministic ties)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)


def mask_seen(scores: np.ndarray, matrix: "sp.csr_matrix", rows: np.ndarray) -> None:
    """Set to -inf, in place, the scores of items each row's user has in train.

    ``rows`` are matrix rows aligned with the score rows; -1 (cold users) masks nothing.
    """
    warm = np.flatnonzero(rows >= 0)
    if warm.size == 0:
        return
    sub = matrix[rows[warm]]
    batch_rows = np.repeat(warm, np.diff(sub.indptr))
    scores[batch_rows, sub.indices] = -np.inf


def recommendations_frame(
    users: pl.Series, item_idx: np.ndarray, scores: np.ndarray, item_ids: pl.Series
) -> pl.DataFrame:
    """Build the ``recommend`` output from a batch of top-k arrays (rows aligned with ``users``).

    Non-finite scores (masked items, padding) are dropped.
    """
    n, k = item_idx.shape
    flat_scores = scores.reshape(-1).astype(np.float64)
    keep = np.isfinite(flat_scores)
    user_pos = np.repeat(np.arange(n), k)[keep]
    return pl.DataFrame(
        {
            Columns.USER: users.gather(user_pos),
            Columns.ITEM: item_ids.gather(item_idx.reshape(-1)[keep]),
            Columns.SCORE: flat_scores[keep],
        }
    )


def batches(n: int, size: int):
    """Slices ``[start, stop)`` covering ``range(n)`` in chunks of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


# -- composing and reporting ------------------------------------------------------------------

#: set by the worker process: receives (stage, fields) of every progress report
_progress_hook = None


def report_progress(stage: str = "fit", **fields) -> None:
    """Tell the user how a long ``fit`` goes, e.g. ``report_progress("fit", epoch=3, epochs=10,
    loss=5.2, valid_ndcg=0.08, eta_seconds=40)``. Under ``harness submit`` the line reaches the
    submitter's terminal; elsewhere it is printed to stderr. Values should be numbers, strings or
    None; keys ``epoch``/``epochs`` and ``eta_seconds`` are shown specially."""
    if _progress_hook is not None:
        _progress_hook(stage, fields)
        return
    import sys

    sys.stderr.write(f"{stage}: {format_progress(fields)}\n")


def format_progress(fields: dict) -> str:
    """One line from a progress report: ``epoch 3/10 · loss 5.2 · valid_ndcg 0.08 · eta 40 s``."""
    parts = []
    fields = dict(fields)
    if "epoch" in fields:
        epoch, epochs = fields.pop("epoch"), fields.pop("epochs", None)
        parts.append(f"epoch {epoch}" + (f"/{epochs}" if epochs else ""))
    eta = fields.pop("eta_seconds", None)
    for key, value in fields.items():
        if value is None:
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    if eta is not None:
        parts.append(f"eta {eta:.0f} s")
    return " · ".join(p for p in parts if p)


def build_recommender(name: str, **params) -> Recommender:
    """A fresh, unfitted instance of the registered recommender ``name`` (a built-in baseline
    or any installed plugin), constructed from keyword parameters (values or their ``-p`` text).
    This is how one recommender composes others, e.g. a re-ranker over candidate generators::

        als = build_recommender("als", factors=64)
        als.fit(data)
        candidates = als.recommend(users, 100)

    Raises harness.errors.NotFoundError for an unknown name and ConfigError/PluginError for bad
    parameters, like ``harness submit``."""
    from harness import plugins

    return plugins.build(name, {key: value for key, value in params.items()})
