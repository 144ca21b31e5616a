"""The plugin contract: everything a recommender author needs, in one file.

A recommender is any class (or factory) registered under the entry-point group
``harness.recommenders`` (:data:`ENTRY_POINT_GROUP`). The harness builds it with the keyword
parameters given on the command line (``-p factors=64``), converted to the types of its
``__init__`` signature, then calls :meth:`Recommender.fit` and :meth:`Recommender.recommend` in a
worker process that never sees the truth or the database. The rules are on those two methods.

Parameters: ``-p key=value`` is converted to the type its ``__init__`` annotation names (int,
float, str, bool, ``X | None``, ``Literal[...]``), else the type of its default. A numeric
parameter may declare the range it accepts with :class:`Bounds` in an ``Annotated`` annotation::

    from typing import Annotated
    from harness.api import Bounds

    class MyModel:
        def __init__(self, factors: Annotated[int, Bounds(ge=1)] = 64,
                     dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.1) -> None: ...

``harness submit`` checks ``-p`` against the annotations and bounds before a worker starts: a
value out of range is one ``error:`` line naming the parameter, the value and the bound, exit 2,
and no run is stored. harness never imports a plugin to do so: it reads the signature from the
source file, which works when the class defines ``__init__`` itself (no decorator, no
``**kwargs``), the annotation is written with the plain names (``Annotated``, ``Bounds``) and the
bounds are literal numbers. Otherwise the worker applies the same check, with the same message,
before ``fit`` (also without storing a run). ``harness list`` shows each parameter's bounds.

A model may build other registered recommenders (:func:`build_recommender`) and report how a
long ``fit`` goes (:func:`report_progress`). Helpers for the common part of ``recommend``
(:func:`top_k`, :func:`mask_seen`, :func:`recommendations_frame`, :func:`batches`,
:func:`index_of`) live in :mod:`harness.kit` and are re-exported here.
:func:`harness.checks.check_recommender` checks a model against these rules.

Stability: the names in ``__all__`` and the rules below are the public contract. They change only
with a new minor version of harness and a note in the changelog; anything else in the package is
internal and may change at any time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from harness.config import Columns
from harness.kit import (
    Bounds,
    batches,
    format_progress,
    index_of,
    mask_seen,
    recommendations_frame,
    top_k,
)

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "ENTRY_POINT_GROUP",
    "Bounds",
    "Columns",
    "Recommender",
    "TrainData",
    "build_recommender",
    "report_progress",
    "batches",
    "index_of",
    "mask_seen",
    "recommendations_frame",
    "top_k",
]

ENTRY_POINT_GROUP = "harness.recommenders"


@dataclass(frozen=True, eq=False)
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

    Immutable: the attributes cannot be reassigned, and the frames are private copies (polars
    clones, which cost no data copy), so a caller that changes its own frames later never
    desyncs the derived views (``matrix``, ``user_ids``, ...) computed once, on first use. Do not
    mutate these frames in place (``df[...] = ...``, ``insert_column``, ``extend``); derive new
    frames instead, as every other polars operation does.
    """

    interactions: pl.DataFrame
    users: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    cutoff: datetime | None = None
    seed: int = 0
    n_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("interactions", "users", "items"):
            frame = getattr(self, name)
            if frame is not None:
                object.__setattr__(self, name, frame.clone())

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
        return index_of(self.user_ids, users)

    def item_index(self, items: pl.Series) -> np.ndarray:
        """Dense column of each item in :attr:`matrix`; -1 for items not in train."""
        return index_of(self.item_ids, items)

    @cached_property
    def matrix(self) -> sp.csr_matrix:
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


class Recommender(Protocol):
    """What the harness calls: ``fit`` once, then ``recommend`` once for every test user.

    Optional class attributes, read when present:

    - ``description: str``: one line for ``harness list`` (default: the first line of the class
      docstring).
    - ``exclude_seen: bool``: whether lists leave out the items a user has in train. When true,
      :func:`harness.checks.check_recommender` fails a list that returns one. Built-ins take it as
      an ``__init__`` parameter (default ``True``) so that users can turn it off for
      re-consumption data.
    """

    def fit(self, data: TrainData) -> None:
        """Learn from the training part only.

        ``data`` holds the interactions before the split's cutoff and the feature rows known at
        it; never the truth. Use ``data.seed`` for every random choice (two fits with one seed
        give the same lists) and at most ``data.n_threads`` cores. The return value is ignored.
        """

    def recommend(self, users: pl.Series, k: int) -> pl.DataFrame:
        """Top-``k`` lists for ``users``: a polars DataFrame with ``user_id``, ``item_id``, ``score``.

        - Called once per batch of up to 100k users after one ``fit`` (disjoint batches), so that
          no process holds every list at once.
        - ``users`` holds warm and cold users alike (cold: no interactions in the training data,
          ``data.user_index`` -1). Return a list for every one of them: a user without a list
          scores 0 on every metric (serve cold users popular items, or use ``data.users``).
        - At most ``k`` distinct items per user; fewer are allowed and reported.
        - ``score`` is numeric, never null or NaN; higher is better. Each user's rows come
          together, best first (non-increasing score); ties keep the order returned.
        - Only users that were asked for, only items of the training data.
        - Memory must not grow with the number of users: score them in :func:`batches`.

        A list that breaks these rules fails the run with a message naming the first offending rows.
        """
        ...


# -- composing and reporting ------------------------------------------------------------------

#: set by the worker process: receives (stage, fields) of every progress report
_progress_hook: Callable[[str, dict[str, Any]], None] | None = None


def report_progress(stage: str = "fit", **fields: Any) -> None:
    """Tell the user how a long ``fit`` goes, e.g. ``report_progress("fit", epoch=3, epochs=10,
    loss=5.2, valid_ndcg=0.08, eta_seconds=40)``. Under ``harness submit`` the line reaches the
    submitter's terminal; elsewhere it is printed to stderr. Values should be numbers, strings or
    None; keys ``epoch``/``epochs`` and ``eta_seconds`` are shown specially."""
    if _progress_hook is not None:
        _progress_hook(stage, fields)
        return
    import sys

    sys.stderr.write(f"{stage}: {format_progress(fields)}\n")


def build_recommender(name: str, **params: Any) -> Recommender:
    """A fresh, unfitted instance of the registered recommender ``name`` (a built-in baseline
    or any installed plugin), constructed from keyword parameters (values or their ``-p`` text).
    This is how one recommender composes others, e.g. a re-ranker over candidate generators::

        als = build_recommender("als", factors=64)
        als.fit(data)
        candidates = als.recommend(users, 100)

    Raises harness.errors.NotFoundError for an unknown name and ConfigError/PluginError for bad
    parameters, like ``harness submit``."""
    from harness import plugins

    return plugins.build(name, params)
