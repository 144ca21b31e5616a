"""The metric registry: each family module decorates one function with :func:`family`."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


def metric_id(name: str, k: int) -> str:
    """The stable id of a metric at a cut-off, e.g. ``ndcg@10``."""
    return f"{name}@{k}"


@dataclass
class Context:
    """What every family sees: lists cut at max(ks) for truth users only, the truth (a pair may
    repeat), truth users (``n`` distinct relevant items, ``segment``), optional train/categories,
    and ``pair_key``: the packed (user, item) key of :mod:`harness.pairs` (None for
    non-integer ids)."""

    recs: pl.DataFrame
    truth: pl.DataFrame
    users: pl.DataFrame
    ks: tuple[int, ...]
    train: pl.DataFrame | None = None
    item_categories: pl.DataFrame | None = None
    pair_key: pl.Expr | None = None
    notices: list[str] = field(default_factory=list)


class Registry(dict):
    """Family name -> function(ctx) returning per-user columns (a frame keyed by user_id) or
    ``{segment: {metric id: value}}`` for metrics that are not per user. ``names`` lists metric
    names in report order."""

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
