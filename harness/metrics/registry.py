"""The metric registry: each family module decorates one function with :func:`family`.

A family is called once per chunk of lists (whole users, see :class:`Context`) and returns
:class:`PerUser` values for the chunk's users, :class:`Parts` (compact per-user quantities that the
values derive from), or :class:`Totals` (counts that add up over chunks, for metrics that are not
per user), or None when it cannot run (it notes why)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import polars as pl


def metric_id(name: str, k: int) -> str:
    """The stable id of a metric at a cut-off, e.g. ``ndcg@10``."""
    return f"{name}@{k}"


@dataclass
class Context:
    """What every family sees for one chunk of lists.

    ``recs``: the lists of some truth users (``user_id, item_id, rank``), cut at max(ks), each
    user's rows contiguous and in rank order, every user whole and in this chunk only;
    ``starts``: first row of each user's block plus the row count at the end; ``users``: those
    users' truth rows (``user_id``, ``n`` distinct relevant items, ``segment``), one per block, in
    block order; ``truth``: the truth pairs of those users, distinct, grouped by user in block
    order (``n`` rows each); optional
    train/categories; ``shared``: state a family prepares once and reuses for every chunk;
    ``placed``: each rank is its row's place in its block (1, 2, ...), known by the caller."""

    recs: pl.DataFrame
    truth: pl.DataFrame
    users: pl.DataFrame
    ks: tuple[int, ...]
    starts: np.ndarray
    train: pl.DataFrame | None = None
    item_categories: pl.DataFrame | None = None
    notices: list[str] = field(default_factory=list)
    shared: dict = field(default_factory=dict)
    placed: bool = False

    def note(self, message: str) -> None:
        """A notice for the report, once per evaluation however many chunks there are."""
        if message not in self.notices:
            self.notices.append(message)

    def prepared(self, key: str, make: Callable[[], object]):
        """``make()`` once per evaluation; the same object for every chunk."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]


@dataclass
class PerUser:
    """Per-user values of a chunk: metric id -> one float per block of ``ctx.users``; ``missing``
    is the value of a truth user without a list (NaN: no value, left out of the mean)."""

    columns: dict[str, np.ndarray]
    missing: float = 0.0


@dataclass
class Parts:
    """Per-user quantities of a chunk from which a family's per-user values derive, kept instead
    of the values because they are smaller: ``counts`` (one per block of ``ctx.users``) says how
    many entries of each array of ``parts`` belong to each block, blocks one after another.
    ``values(counts, parts, n, ids)`` returns the values of the metric ids ``ids`` for the users
    with those counts and parts (all truth users once scoring ends; 0 entries for a user without
    a list), ``n`` their relevant counts. At 1M users x top-100 the 36 accuracy values are 288 MB
    of float64; the ranks of the hits (about 2 per user) and the counts are about 12 MB."""

    counts: np.ndarray
    parts: dict[str, np.ndarray]
    values: Callable[
        [np.ndarray, dict[str, np.ndarray], np.ndarray, Collection[str]], dict[str, np.ndarray]
    ]


@dataclass
class Totals:
    """Counts that add up over chunks (exactly: integers) and ``finish(counts)`` -> ``{segment:
    {metric id: value}}`` once every chunk is in."""

    counts: np.ndarray
    finish: Callable[[np.ndarray], dict[str, dict[str, float]]]


class Registry(dict):
    """Family name -> function(ctx) returning :class:`PerUser`, :class:`Totals` or None.
    ``names`` lists metric names in report order."""

    def __init__(self):
        super().__init__()
        self._names: list[str] = []

    def names(self) -> list[str]:
        return list(self._names)


REGISTRY = Registry()


def family(name: str, metrics: tuple[str, ...]):
    """Register a metric family under ``name`` producing the metric names ``metrics``."""

    def wrap(fn):
        REGISTRY[name] = fn
        REGISTRY._names.extend(metrics)
        return fn

    return wrap
