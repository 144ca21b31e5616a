"""First stage: candidate items per user from several generators, merged into one frame.

Each generator is a registered recommender (a built-in baseline or any plugin), built by name through
:func:`harness.api.build_recommender` and fitted on the same training data.
Its top-``n`` list becomes two features per (user, item): its score and its rank; an item one
generator did not propose gets nulls there (LightGBM treats null as missing, which is what it is).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from harness.api import Columns, TrainData, build_recommender

U, I, S = Columns.USER, Columns.ITEM, Columns.SCORE


def default_generators(
    names: str = "popular,als,itemknn,ease",
    als_factors: int = 64,
    als_iterations: int = 15,
    knn_neighbours: int = 50,
) -> dict[str, Callable[[], object]]:
    """Name -> factory of the generators, each a registered recommender built through the public
    contract (:func:`harness.api.build_recommender`), never imported from its package: any
    installed plugin can be a generator. ``names``: comma-separated registered names."""
    settings = {
        "als": {"factors": als_factors, "iterations": als_iterations},
        "itemknn": {"neighbours": knn_neighbours},
    }
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise ValueError("generators must name at least one registered recommender")
    return {
        name: (lambda name=name: build_recommender(name, **settings.get(name, {})))
        for name in chosen
    }


def fit_generators(
    factories: dict[str, Callable[[], object]], data: TrainData
) -> dict[str, object]:
    """Fit a fresh instance of every generator on ``data`` (they see the same training part)."""
    fitted = {}
    for name, make in factories.items():
        model = make()
        model.fit(data)
        fitted[name] = model
    return fitted


def candidates(generators: dict[str, object], users: pl.Series, n: int) -> pl.DataFrame:
    """Union of every generator's top ``n`` per user: user_id, item_id, ``{g}_score``, ``{g}_rank``
    per generator ``g`` (null where ``g`` did not propose the item) and ``n_sources``."""
    merged: pl.DataFrame | None = None
    for name, model in generators.items():
        recs = model.recommend(users, n).select(
            U, I, pl.col(S).cast(pl.Float64).alias(f"{name}_score")
        )
        # generators return each user's list best first; keep that order for the rank
        recs = recs.with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(U).alias(f"{name}_rank")
        )
        merged = recs if merged is None else merged.join(recs, on=[U, I], how="full", coalesce=True)
    ranks = [pl.col(f"{g}_rank") for g in generators]
    return merged.with_columns(
        pl.sum_horizontal([r.is_not_null().cast(pl.Int32) for r in ranks]).alias("n_sources"),
        # reciprocal-rank fusion: the fallback order when no ranker could be trained
        pl.sum_horizontal([(1.0 / (60.0 + r)).fill_null(0.0) for r in ranks]).alias("rrf"),
    )
