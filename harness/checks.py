"""Check a recommender against the plugin contract: call it from your plugin's tests.

    from harness.checks import check_recommender

    def test_contract():
        check_recommender(MyRecommender)                 # a class or factory, or an instance
        check_recommender(lambda: MyRecommender(factors=8), data=my_small_train_data, k=5)

It fits the model twice on the same data (same seed) and asks for warm and cold users. It raises
:class:`harness.errors.PluginError` listing every broken rule:

- ``recommend`` returns a polars DataFrame with ``user_id``, ``item_id`` and ``score`` that
  passes the checks harness runs on a submission's lists, with the same message
  (:func:`harness.recs.validate_recommendations`: ids without nulls, a numeric ``score`` without
  nulls or NaN, no item twice for one user, only users asked for, at most ``k`` rows per user);
- item ids among the known items, each user's rows in non-increasing score order;
- every user asked for gets a list, cold users (absent from train) included, as long as the
  catalogue allows (``full_lists``): min(k, items) for cold users, min(k, unseen items) for warm;
- with ``exclude_seen`` true (the default of the built-ins) no train item of a user comes back;
- two fits with the same seed give the same lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from harness.api import Columns, TrainData
from harness.errors import HarnessError, PluginError
from harness.frames import as_int
from harness.recs import validate_recommendations

U, I, S = Columns.USER, Columns.ITEM, Columns.SCORE


def example_data(n_users: int = 60, n_items: int = 40, seed: int = 0) -> TrainData:
    """A small TrainData with skewed popularity, repeated interactions and timestamps."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(2, 12, size=n_users)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(np.arange(100, 100 + n_items), size=len(users), p=pop / pop.sum())
    start = datetime(2024, 1, 1)
    times = [start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 60, size=len(users))]
    frame = pl.DataFrame(
        {
            U: users.astype(np.int64),
            I: items.astype(np.int64),
            Columns.TIMESTAMP: pl.Series(times, dtype=pl.Datetime("us")),
            Columns.WEIGHT: pl.Series(np.ones(len(users)), dtype=pl.Float32),
        }
    )
    return TrainData(frame, cutoff=start + timedelta(days=60), seed=seed, n_threads=1)


def _instantiate(factory_or_instance: Any) -> Callable[[], Any]:
    if isinstance(factory_or_instance, type) or (
        callable(factory_or_instance) and not hasattr(factory_or_instance, "fit")
    ):
        return factory_or_instance
    template = copy.deepcopy(factory_or_instance)
    return lambda: copy.deepcopy(template)


def _default_bounds(factory: Any) -> list[str]:
    """Defaults outside the Bounds their own parameter declares (harness.api.Bounds)."""
    from harness.plugins import _signature_params

    if not isinstance(factory, type):
        return []
    try:
        params = _signature_params(factory)
    except (TypeError, ValueError):
        return []
    return [
        f"the default {p.name}={p.default!r} is outside its own bounds ({p.bounds})"
        for p in params
        if p.bounds is not None and not p.required and not p.bounds.contains(p.default)
    ]


def _cold_ids(data: TrainData, n: int) -> pl.Series:
    dtype = data.user_ids.dtype
    if dtype.is_integer():
        top = as_int(data.user_ids.max()) if data.n_users else 0
        return pl.Series(U, range(top + 1, top + 1 + n), dtype=dtype)
    return pl.Series(U, [f"__cold_user_{i}__" for i in range(n)], dtype=dtype)


def _problems(
    recs: Any,
    users: pl.Series,
    cold: pl.Series,
    data: TrainData,
    k: int,
    exclude_seen: bool,
    full_lists: bool,
) -> list[str]:
    if not isinstance(recs, pl.DataFrame):
        return [f"recommend returned {type(recs).__name__}, not a polars DataFrame"]
    missing = [c for c in (U, I, S) if c not in recs.columns]
    if missing:
        return [f"recommend output lacks column(s) {', '.join(missing)} (has {recs.columns})"]
    out: list[str] = []
    try:  # the rules every list meets when harness scores it: ids, score, duplicates, users, k
        validate_recommendations(recs, source="recommend output", k=k, users=users)
    except HarnessError as exc:
        out.append(str(exc))
    known = data.item_ids
    if data.items is not None and I in data.items.columns:
        known = pl.concat([known, data.items.get_column(I).cast(known.dtype)]).unique()
    unknown = recs.filter(~pl.col(I).is_in(known.implode()))
    if unknown.height:
        out.append(
            f"{unknown.height} rows with items unknown to train/items, e.g. {unknown.row(0)}"
        )
    if recs.schema[S].is_numeric():
        unsorted = recs.with_row_index("_r").filter(
            pl.col(S).cast(pl.Float64).diff().over(U, order_by="_r") > 0
        )
        if unsorted.height:
            out.append(
                f"rows are not in non-increasing score order for {unsorted[U].n_unique()} users"
            )
    if exclude_seen:
        seen = recs.join(data.interactions.select(U, I).unique(), on=[U, I], how="semi")
        if seen.height:
            out.append(f"{seen.height} recommended items are already in the user's train history")
    if full_lists:
        seen_n = data.interactions.select(U, I).unique().group_by(U).len("seen")
        expect = (
            pl.DataFrame({U: users})
            .join(seen_n, on=U, how="left")
            .with_columns(pl.col("seen").fill_null(0))
            .with_columns(
                need=pl.min_horizontal(
                    pl.lit(k), pl.lit(data.n_items) - (pl.col("seen") if exclude_seen else 0)
                )
            )
            .join(recs.group_by(U).len(), on=U, how="left")
            .with_columns(pl.col("len").fill_null(0))
        )
        short = expect.filter(pl.col("len") < pl.col("need"))
        if short.height:
            n_cold = short.filter(pl.col(U).is_in(cold.implode())).height
            out.append(
                f"{short.height} users ({n_cold} cold) get fewer items than the catalogue allows, "
                f"e.g. user {short[U][0]}: {short['len'][0]} of {short['need'][0]}"
            )
    return out


def _canonical(recs: pl.DataFrame) -> pl.DataFrame:
    return recs.select(U, I, pl.col(S).cast(pl.Float64)).sort(
        [U, S, I], descending=[False, True, False]
    )


def check_recommender(
    factory_or_instance: Any,
    data: TrainData | None = None,
    k: int = 10,
    *,
    n_cold: int = 3,
    full_lists: bool = True,
    deterministic: bool = True,
) -> dict:
    """Fit and query a recommender twice and check the plugin contract (see the module docstring).

    ``factory_or_instance``: a class or zero-argument factory, or an unfitted instance (copied
    before each fit). ``data`` defaults to :func:`example_data`. Returns a small report
    (users, cold users, rows) and raises PluginError listing every broken rule.
    """
    data = data if data is not None else example_data()
    make = _instantiate(factory_or_instance)
    cold = _cold_ids(data, n_cold)
    users = pl.concat([data.user_ids.rename(U), cold])
    runs = []
    for _ in range(2 if deterministic else 1):
        model = make()
        try:
            model.fit(data)
            recs = model.recommend(users, k)
        except Exception as exc:
            raise PluginError(
                f"{type(model).__name__} failed: {type(exc).__name__}: {exc}"
            ) from exc
        runs.append(recs)
    exclude = bool(getattr(model, "exclude_seen", False))
    problems = _default_bounds(factory_or_instance)
    problems += _problems(runs[0], users, cold, data, k, exclude, full_lists)
    if not problems and deterministic and not _canonical(runs[0]).equals(_canonical(runs[1])):
        problems.append("two fits with the same seed gave different recommendations")
    if problems:
        raise PluginError(f"{type(model).__name__} breaks the contract: " + "; ".join(problems))
    return {"users": users.len(), "cold_users": cold.len(), "rows": runs[0].height}
