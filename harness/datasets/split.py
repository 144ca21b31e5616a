"""Cleaning (positive filter, dedup, minimum counts) and the split protocols.

Protocols (all vectorised in polars):

- ``temporal``: one global cutoff, ``days`` before the last interaction or the ``quantile`` of
  the timestamps; train is strictly before the cutoff, test at or after it.
- ``leave-last``: each user's last ``n`` interactions (by time, ties by item id) go to test.
- ``ratio``: each user's latest ``test_ratio`` share (rounded down, at least one when the user
  has two or more) goes to test.
- ``random``: each interaction goes to test with probability ``test_ratio`` (seeded).

Truth is the distinct (user, item) pairs of the test part, minus pairs already in train unless
``exclude_seen = false``. Test users are the distinct truth users; ``cold`` marks those with no
train interaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

import numpy as np
import polars as pl

from harness.datasets.filters import compile_filter
from harness.errors import ConfigError, DataError

U, I, T = "user_id", "item_id", "timestamp"


def clean(inter: pl.DataFrame, entry: dict, name: str) -> tuple[pl.DataFrame, dict]:
    """Positive filter, dedup, minimum counts; returns the frame and what each step removed."""
    report = {"raw_interactions": inter.height}
    if entry.get("positive"):
        expr = compile_filter(entry["positive"], inter.schema, where=f"[{name}] positive")
        try:
            inter = inter.filter(expr)
        except pl.exceptions.PolarsError as exc:  # types the compile-time check cannot see
            raise ConfigError(
                f"[{name}] positive: cannot evaluate {entry['positive']!r} on the "
                f"data ({type(exc).__name__})"
            ) from None
        report["after_positive"] = inter.height
    dedup = entry.get("dedup", "last")
    if dedup != "none":
        if T in inter.columns:
            inter = inter.sort([U, I, T], nulls_last=False)
        inter = inter.unique([U, I], keep=dedup, maintain_order=True)
        report["after_dedup"] = inter.height
    min_user, min_item = int(entry.get("min_user", 0)), int(entry.get("min_item", 0))
    if min_user > 1 or min_item > 1:
        rounds = 0
        while True:
            before = inter.height
            if min_item > 1:
                inter = inter.filter(pl.len().over(I) >= min_item)
            if min_user > 1:
                inter = inter.filter(pl.len().over(U) >= min_user)
            rounds += 1
            if entry.get("min_count_mode", "once") == "once" or inter.height == before:
                break
        report["after_min_counts"] = inter.height
        report["min_count_rounds"] = rounds
    if inter.height == 0:
        raise DataError(f"[{name}]: the filters leave no interactions")
    return inter, report


def split(inter: pl.DataFrame, spec: dict, name: str, sname: str):
    """Return (train, test, cutoff)."""
    proto = spec["protocol"]
    where = f"[{name}.splits.{sname}]"
    has_time = T in inter.columns and inter[T].null_count() < inter.height
    if proto != "random" and not has_time:
        raise ConfigError(
            f"{where}: protocol {proto!r} needs timestamps and dataset {name!r} "
            "has none; use protocol = 'random'"
        )
    cutoff = None
    is_test: pl.Expr | pl.Series
    if proto == "temporal":
        if "days" in spec:
            cutoff = cast(datetime, inter[T].max()) - timedelta(days=float(spec["days"]))
        else:
            q = float(spec["quantile"])
            if not 0 < q < 1:
                raise ConfigError(f"{where}: quantile must be between 0 and 1")
            cutoff = cast(datetime, inter[T].quantile(q, interpolation="lower"))
        is_test = pl.col(T) >= cutoff
    elif proto in ("leave-last", "ratio"):
        inter = inter.sort([U, T, I])
        pos_from_end = pl.int_range(pl.len()).reverse().over(U)
        if proto == "leave-last":
            n = int(spec.get("n", 1))
            if n < 1:
                raise ConfigError(f"{where}: n must be at least 1")
            is_test = pos_from_end < n
        else:
            r = float(spec.get("test_ratio", 0.2))
            if not 0 < r < 1:
                raise ConfigError(f"{where}: test_ratio must be between 0 and 1")
            n_test = (pl.len().over(U) * r).floor().cast(pl.Int64)
            n_test = pl.when((n_test == 0) & (pl.len().over(U) >= 2)).then(1).otherwise(n_test)
            is_test = pos_from_end < n_test
    else:
        r = float(spec.get("test_ratio", 0.2))
        if not 0 < r < 1:
            raise ConfigError(f"{where}: test_ratio must be between 0 and 1")
        rng = np.random.default_rng(int(spec.get("seed", 0)))
        is_test = pl.Series(rng.random(inter.height) < r)
    marked = inter.with_columns(is_test.alias("_test"))
    train = marked.filter(~pl.col("_test")).drop("_test")
    test = marked.filter(pl.col("_test")).drop("_test")
    if train.height == 0:
        raise DataError(f"{where}: the split leaves no train interactions")
    return train, test, cutoff


def truth_of(train: pl.DataFrame, test: pl.DataFrame, spec: dict, where: str):
    """(truth, test_users) from the test part."""
    truth = test.select(U, I).unique(maintain_order=True)
    if spec.get("exclude_seen", True):
        truth = truth.join(train.select(U, I).unique(), on=[U, I], how="anti")
    if truth.height == 0:
        raise DataError(f"{where}: the split leaves no truth interactions")
    truth = truth.sort(U, I)
    warm = train.select(U).unique().with_columns(pl.lit(False).alias("cold"))
    test_users = (
        truth.select(U)
        .unique()
        .join(warm, on=U, how="left")
        .with_columns(pl.col("cold").fill_null(True))
        .sort(U)
    )
    return truth, test_users
