"""Metrics engine: every metric of DESIGN.md at every k, all users at once, for segments
all/warm/cold. Metric families live in one module each and register themselves here through
:func:`harness.metrics.registry.metric`; each formula is written once, in its function's docstring."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from harness.api import Columns
from harness.config import SEGMENTS
from harness.metrics import ranking  # noqa: F401,I001  (import order = report order)
from harness.metrics import catalog, novelty, diversity  # noqa: F401,I001
from harness.ids import align_ids, check_overlap
from harness.pairs import pair_key
from harness.metrics.registry import REGISTRY, Context, metric_id

DEFAULT_KS = (1, 5, 10, 20, 50, 100)
USER, ITEM = Columns.USER, Columns.ITEM

__all__ = ["DEFAULT_KS", "REGISTRY", "Evaluation", "evaluate", "metric_id"]


@dataclass
class Evaluation:
    """Metric values per segment, per-user values (for significance tests and slicing), notices."""

    metrics: dict[str, dict[str, float]]
    per_user: pl.DataFrame
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The ``--json`` shape of DESIGN.md: ``metrics`` for segment all, ``segments`` for each."""
        return {"metrics": self.metrics.get("all", {}), "segments": self.metrics}


def _segments(truth_users: pl.DataFrame, train, cold_users) -> pl.DataFrame:
    """Mark each truth user warm or cold: `cold_users` when given, else users absent from train."""
    if cold_users is not None:
        cold = pl.col(USER).is_in(cold_users.cast(truth_users.schema[USER]).implode())
    elif train is not None:
        cold = ~pl.col(USER).is_in(train.get_column(USER).unique().implode())
    else:
        cold = pl.lit(False)
    return truth_users.with_columns(
        pl.when(cold).then(pl.lit("cold")).otherwise(pl.lit("warm")).alias("segment"))


def evaluate(recs: pl.DataFrame, truth: pl.DataFrame, *, ks=DEFAULT_KS,
             train: pl.DataFrame | None = None, cold_users: pl.Series | None = None,
             item_categories: pl.DataFrame | None = None,
             source: str = "recommendations", dialect: str = "harness") -> Evaluation:
    """Score normalised lists (``user_id, item_id, rank``) against ``truth`` (``user_id, item_id``).

    Averages run over all truth users; a user without a list scores 0. Catalogue metrics
    (coverage, gini) and novelty need ``train``; diversity needs ``item_categories``.
    ``dialect`` other than ``harness`` reproduces another library's definitions
    (:mod:`harness.metrics.dialects`; there ``truth`` keeps repeated pairs and lists of users
    outside the truth matter)."""
    if dialect != "harness":
        from harness.metrics.dialects import evaluate_dialect

        return evaluate_dialect(recs, truth, ks=ks, dialect=dialect, train=train,
                                cold_users=cold_users, item_categories=item_categories,
                                source=source)
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be positive integers, got {ks}")
    truth = truth.select(USER, ITEM)
    recs = recs.select(USER, ITEM, "rank")
    if recs.height and recs.get_column("rank").max() > ks[-1]:
        recs = recs.filter(pl.col("rank") <= ks[-1])
    # ids compared exactly (harness.ids): a no-op when the caller aligned them already
    recs, truth = align_ids(recs, truth, source=source)
    id_notices = check_overlap(recs, truth, source=source)
    if train is not None:
        train, _ = align_ids(train, truth, source="the catalogue")
    if item_categories is not None:
        item_categories, _ = align_ids(item_categories, truth, source="the item categories",
                                       columns=(ITEM,))
    # truth may repeat a pair: n counts distinct items, and the pair lookups ignore repeats
    # (deduplicating 15M pairs would cost more than everything else but the lookup)
    n_relevant = pl.col(ITEM).n_unique().cast(pl.Int64).alias("n")
    users = _segments(truth.group_by(USER).agg(n_relevant).sort(USER), train, cold_users)
    in_truth = recs.get_column(USER).is_in(users.get_column(USER).implode()).fill_null(False)
    if not in_truth.all():  # skip the copy in the usual case: every list belongs to a truth user
        recs = recs.filter(in_truth)
    ctx = Context(recs=recs, truth=truth, users=users, ks=ks, train=train,
                  item_categories=item_categories, pair_key=pair_key(recs, truth))
    per_user = users.select(USER, "segment")
    metrics: dict[str, dict[str, float]] = {}
    for family in REGISTRY.values():
        result = family(ctx)
        if result is None:
            continue
        if isinstance(result, pl.DataFrame):  # per-user columns
            per_user = per_user.join(result, on=USER, how="left", maintain_order="left")
        else:  # {segment: {metric id: value}}
            for segment, values in result.items():
                metrics.setdefault(segment, {}).update(values)
    value_cols = [c for c in per_user.columns if c not in (USER, "segment")]
    present = set(per_user.get_column("segment").unique().to_list())
    for segment in SEGMENTS:
        if segment != "all" and segment not in present:
            metrics.pop(segment, None)
            continue
        rows = per_user if segment == "all" else per_user.filter(pl.col("segment") == segment)
        means = rows.select(pl.col(value_cols).mean()).row(0, named=True) if rows.height else {}
        # a metric with no defined value in a segment (diversity without two categorised items)
        # is left out rather than reported as null
        values = {c: float(v) for c, v in means.items() if v is not None}
        metrics[segment] = {**values, **metrics.get(segment, {})}
    order = {m: i for i, m in enumerate(_metric_order(ks))}
    metrics = {s: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], len(order))))
               for s, v in metrics.items() if s in SEGMENTS}
    return Evaluation(metrics=metrics, per_user=per_user, notices=[*id_notices, *ctx.notices])


def _metric_order(ks) -> list[str]:
    return [metric_id(name, k) for name in REGISTRY.names() for k in ks]
