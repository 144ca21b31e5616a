"""Metric dialects: other libraries' own definitions of the metrics harness reports, so a user can
reproduce RecTools', ranx', trec_eval's, RecBole's, Microsoft Recommenders' or LensKit's numbers
exactly from the same files (``harness score --dialect X``; docs/metrics.md, "Dialects").

Each dialect is data (:class:`Dialect`): who is averaged, the MAP/precision/recall normalisers, the
NDCG discount and ideal, the tie order, whether a repeated truth pair counts twice, and which
metrics the library offers at all. One vectorised routine (:func:`evaluate_dialect`) reads those
fields; there is no per-library code path and no loop over users. The ``harness`` dialect is
:func:`harness.metrics.evaluate` itself and never changes.

Per user u: n_u relevant items (with ``truth_repeats="count"`` a pair listed r times weighs r, and
n_u is the number of truth rows), L_u the length of u's list cut at k, w_i the weight of the i-th
listed item (its truth multiplicity, 0 when not relevant), h_i = sum(w_j, j <= i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from harness.api import Columns
from harness.ids import align_ids, check_overlap

USER, ITEM = Columns.USER, Columns.ITEM
INPUT_ROW = "input_row"  # optional column of validated lists: the row's place in the input file
RANKING = ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")
METRICS = (*RANKING, "novelty", "diversity", "coverage", "gini")  # every name a dialect may offer


@dataclass(frozen=True)
class Dialect:
    """One library's definitions. Normalisers name what the per-user sum is divided by:
    ``k``, ``n`` (n_u), ``min_n_k``, ``length`` (min(L_u, k)), ``min_n_length`` (min(n_u, L_u, k))."""

    name: str
    library: str  # the library and version whose numbers it reproduces
    source: str  # where the definitions were read
    metrics: tuple[str, ...]  # metric names the library offers (others: not reported)
    users: str = "truth"  # averaged: truth (all truth users, no list = 0) | listed
    # (truth users with a list) | lists (every list, truth or not)
    users_by_metric: dict[str, str] = field(default_factory=dict)  # overrides of `users`
    precision: str = "k"
    recall: str = "n"
    map: str = "min_n_k"
    ndcg_ideal: str = "min_n_k"  # ideal DCG over min(n_u, k) relevant items, or k positions
    ndcg_discount: str = "log2"  # log2: 1/log2(i+1); lenskit: 1/log2(max(i, 2))
    ties: str = "file"  # file: equal scores keep file order; docno: trec_eval's
    # score descending, then item id as text descending; numba: the order numba's unstable
    # np.argsort(-score, kind="quicksort") leaves them in, applied `sorts` times to the file order
    sorts: int = 1  # times the library sorts each list (ties="numba")
    truth_repeats: str = "once"  # once: a repeated pair counts once; count: each truth row
    # is a relevant occurrence (hits and n_u); n_only: n_u
    # counts truth rows, a listed item hits once (LensKit)
    map_term: str = "rows"  # AP term of a relevant item listed at i with weight w:
    # rows: one term per truth row, sum_j (h_(i-1) + j) / i
    # (a merge of lists and truth); once: h_i / i (RecTools'
    # sparse matrix sums the rows first)
    ndcg_repeats: str = "weight"  # weight: gain w_i; msrec: gain w_i^2 and an ideal over
    # n_u + sum(w_i^2 - w_i) rows (its outer merge with the
    # truth repeats a hit once per truth row on both sides)
    novelty: str | None = "harness"  # harness | rectools | msrec | None
    coverage: str | None = "harness"  # harness | rectools | msrec | None
    notes: str = ""


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "harness",
            "harness",
            "DESIGN.md, Metric definitions",
            (*RANKING, "novelty", "diversity", "coverage", "gini"),
        ),
        Dialect(
            "rectools",
            "RecTools 0.19.0",
            "rectools/metrics/ranking.py, novelty.py, catalog.py",
            (*RANKING, "novelty", "coverage"),
            map="n",
            ndcg_ideal="k",
            truth_repeats="count",
            map_term="once",
            novelty="rectools",
            coverage="rectools",
            notes="MAP(k), NDCG(k) (divide_by_achievable=False), MeanInvUserFreq(k), "
            "CatalogCoverage(k, normalize=True) over train items",
        ),
        Dialect(
            "ranx",
            "ranx 0.3.21",
            "ranx/metrics/*.py",
            RANKING,
            map="n",
            ties="numba",
            sorts=2,  # Run() sorts each list, make_comparable sorts it again
            novelty=None,
            coverage=None,
            notes="evaluate(Qrels, Run, make_comparable=True)",
        ),
        Dialect(
            "trec",
            "trec_eval 9.0.8 (pytrec-eval-terrier 0.5.11)",
            "trec_eval m_*.c",
            RANKING,
            users="listed",
            map="n",
            ties="docno",
            novelty=None,
            coverage=None,
            notes="P_k, recall_k, map_cut_k, ndcg_cut_k; recip_rank and success on lists cut "
            "at k; mean over the queries evaluated",
        ),
        Dialect(
            "recbole",
            "RecBole 1.2.1",
            "recbole/evaluator/metrics.py",
            RANKING,
            novelty=None,
            coverage=None,
            notes="Precision, Recall, MAP, NDCG, MRR, Hit over pos_index/pos_len; a user "
            "without a list is an all-miss row",
        ),
        Dialect(
            "msrec",
            "Microsoft Recommenders 1.2.1",
            "recommenders/evaluation/python_evaluation.py",
            ("precision", "recall", "map", "ndcg", "novelty", "coverage"),
            users="listed",
            users_by_metric={"ndcg": "truth"},
            truth_repeats="count",
            ndcg_repeats="msrec",
            novelty="msrec",
            coverage="msrec",
            notes="precision_at_k, recall_at_k, map_at_k, ndcg_at_k, novelty, catalog_coverage",
        ),
        Dialect(
            "lenskit",
            "LensKit 2025.8.1",
            "src/lenskit/metrics/ranking/*.py, bulk.py",
            RANKING,
            users="lists",
            users_by_metric={"map": "listed"},
            precision="length",
            recall="min_n_k",
            map="min_n_length",
            ndcg_discount="lenskit",
            truth_repeats="n_only",
            novelty=None,
            coverage=None,
            notes="Precision, Recall, AveragePrecision, NDCG, RecipRank, Hit via RunAnalysis; "
            "mean over output lists; AveragePrecision raises ZeroDivisionError on a list "
            "without test items, so map is the mean over lists of truth users",
        ),
    )
}


def get(name: str) -> Dialect:
    """The dialect called ``name``; ValueError listing the known ones otherwise."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None


def offered(d: Dialect, names) -> list[str]:
    """The metric names of ``names`` that dialect ``d`` does not offer."""
    return [n for n in names if n not in d.metrics]


def order_ties(recs: pl.DataFrame, d: Dialect) -> pl.DataFrame:
    """Re-rank each user's list in the dialect's tie order. ``docno``: score descending, then the
    item id as text descending (trec_eval sorts equal scores by strcmp on the document id);
    ``numba``: :func:`numba_order`. Lists without scores keep their ranks (a rank file has no ties
    left after validation)."""
    if d.ties == "file" or Columns.SCORE not in recs.columns or recs.height == 0:
        return recs.drop(INPUT_ROW, strict=False)
    if d.ties == "numba":
        return numba_order(recs, d.sorts)
    ordered = recs.drop(INPUT_ROW, strict=False).sort(
        [USER, Columns.SCORE, pl.col(ITEM).cast(pl.Utf8)],
        descending=[False, True, True],
        maintain_order=True,
    )
    return ordered.with_columns(
        pl.int_range(1, pl.len() + 1).over(USER).cast(pl.Int64).alias("rank")
    )


def numba_order(recs: pl.DataFrame, sorts: int = 1) -> pl.DataFrame:
    """Each user's list ranked the way ranx ranks it: ``np.argsort(-score)`` in numba (an
    unstable quicksort, :mod:`harness.metrics.quicksort`), applied ``sorts`` times, first to the
    list in input order: the ``input_row`` column where the lists carry it (``harness score``
    adds it), else rank order (a stored run's lists, as their parquet holds them). Lists of up to
    15 items (insertion-sorted: stable) and lists without equal scores come out as harness ranks
    them."""
    from harness.metrics.quicksort import argsort

    by = INPUT_ROW if INPUT_ROW in recs.columns else "rank"
    recs = recs.sort(USER, by).drop(INPUT_ROW, strict=False)
    starts = (pl.col(USER) != pl.col(USER).shift(1)).fill_null(True).arg_true()
    bounds = np.append(recs.select(starts).to_series().to_numpy(), recs.height)
    keys = -recs.get_column(Columns.SCORE).cast(pl.Float64).to_numpy()
    perm = np.arange(recs.height)
    for _ in range(sorts):
        perm = perm[argsort(keys[perm], bounds)]
    return recs[perm].with_columns(
        pl.int_range(1, pl.len() + 1).over(USER).cast(pl.Int64).alias("rank")
    )


def _discount(rank: pl.Expr, d: Dialect) -> pl.Expr:
    rank = rank.cast(pl.Float64)
    if d.ndcg_discount == "lenskit":  # LensKit's default weight log(2)/log(max(rank, 2))
        return 1.0 / pl.max_horizontal(rank, pl.lit(2.0)).log(2)
    return 1.0 / (rank + 1.0).log(2)


def _ideal_table(k: int, d: Dialect) -> list[float]:
    """ideal[m] = sum of the discounts of ranks 1..m, m = 0..k."""
    ideal = [0.0]
    for i in range(1, k + 1):
        w = 1.0 / math.log2(max(i, 2)) if d.ndcg_discount == "lenskit" else 1.0 / math.log2(i + 1)
        ideal.append(ideal[-1] + w)
    return ideal


def _norm(kind: str, k: int) -> pl.Expr:
    n, length = pl.col("n").cast(pl.Float64), pl.col("length").cast(pl.Float64)
    return {
        "k": pl.lit(float(k)),
        "n": n,
        "min_n_k": pl.min_horizontal(n, pl.lit(float(k))),
        "length": pl.min_horizontal(length, pl.lit(float(k))),
        "min_n_length": pl.min_horizontal(n, length, pl.lit(float(k))),
    }[kind]


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, 0 where den is 0 (the libraries' default for an undefined user value)."""
    return pl.when(den > 0).then(num / den).otherwise(0.0)


def ranking(
    recs: pl.DataFrame, truth: pl.DataFrame, users: pl.DataFrame, ks, d: Dialect
) -> pl.DataFrame:
    """Per-user ranking columns ``name@k`` for the rows of ``users`` (``user_id, n, length``).
    ``recs`` (user_id, item_id, rank) is already in the dialect's order; ``truth`` has one row per
    truth row (repeats kept)."""
    weights = truth.group_by(USER, ITEM).agg(
        (pl.len() if d.truth_repeats == "count" else pl.lit(1)).cast(pl.Float64).alias("w")
    )
    hits = (
        recs.select(USER, ITEM, "rank")
        .join(weights, on=[USER, ITEM], how="inner")
        .sort(USER, "rank")
        .with_columns(pl.col("w").cum_sum().over(USER).alias("h"))
    )
    rank = pl.col("rank")
    aggs = []
    for k in ks:
        inside = (rank <= k).cast(pl.Float64)
        w = pl.col("w") * inside
        if d.map_term == "once":
            term = inside * pl.col("h")
        else:  # sum over the w rows of (h - w + j), j = 1..w
            term = w * pl.col("h") - w * (pl.col("w") - 1.0) / 2.0
        gain = w * pl.col("w") if d.ndcg_repeats == "msrec" else w
        aggs += [
            w.sum().alias(f"hits@{k}"),
            (term / rank.cast(pl.Float64)).sum().alias(f"ap@{k}"),
            (gain * _discount(rank, d)).sum().alias(f"dcg@{k}"),
            (gain - w).sum().alias(f"extra@{k}"),
            ((rank <= k).cast(pl.Float64) / rank.cast(pl.Float64)).max().alias(f"rr@{k}"),
            (rank <= k).cast(pl.Float64).max().alias(f"hit@{k}"),
        ]
    per_user = users.join(hits.group_by(USER).agg(aggs), on=USER, how="left", maintain_order="left")
    sums = [c for c in per_user.columns if "@" in c]
    per_user = per_user.with_columns(pl.col(sums).fill_null(0.0))
    out = []
    for k in ks:
        n_ideal = (
            pl.col("n") + pl.col(f"extra@{k}").cast(pl.Int64)
            if d.ndcg_repeats == "msrec"
            else pl.col("n")
        )
        m = (
            pl.min_horizontal(n_ideal, pl.lit(k))
            if d.ndcg_ideal == "min_n_k"
            else pl.lit(k, dtype=pl.Int64)
        )
        ideal = m.replace_strict(list(range(k + 1)), _ideal_table(k, d), return_dtype=pl.Float64)
        exprs = {
            "precision": _ratio(pl.col(f"hits@{k}"), _norm(d.precision, k)),
            "recall": _ratio(pl.col(f"hits@{k}"), _norm(d.recall, k)),
            "map": _ratio(pl.col(f"ap@{k}"), _norm(d.map, k)),
            "ndcg": _ratio(pl.col(f"dcg@{k}"), ideal),
            "mrr": pl.col(f"rr@{k}"),
            "hit_rate": pl.col(f"hit@{k}"),
        }
        out += [expr.alias(f"{name}@{k}") for name, expr in exprs.items() if name in d.metrics]
    return per_user.select(USER, *out)


def _users(recs: pl.DataFrame, truth: pl.DataFrame, max_k: int, d: Dialect) -> pl.DataFrame:
    """One row per user the dialect may average: truth users, plus users with a list when a
    metric averages over lists. Columns: ``n`` (relevant items; truth rows with repeats counted),
    ``length`` (list length cut at max k), ``in_truth``, ``listed``."""
    n = pl.len() if d.truth_repeats in ("count", "n_only") else pl.col(ITEM).n_unique()
    users = truth.group_by(USER).agg(n.cast(pl.Int64).alias("n"))
    lengths = (
        recs.filter(pl.col("rank") <= max_k)
        .group_by(USER)
        .agg(pl.len().cast(pl.Int64).alias("length"))
    )
    out = users.join(lengths, on=USER, how="full", coalesce=True)
    out = out.with_columns(
        pl.col("n").is_not_null().alias("in_truth"),
        pl.col("length").is_not_null().alias("listed"),
        pl.col("n").fill_null(0),
        pl.col("length").fill_null(0),
    )
    return out.sort(USER)


def _averaged(d: Dialect, name: str) -> pl.Expr:
    """Mask of the users dialect ``d`` averages metric ``name`` over."""
    kind = d.users_by_metric.get(name, d.users)
    return {
        "truth": pl.col("in_truth"),
        "listed": pl.col("in_truth") & pl.col("listed"),
        "lists": pl.col("listed"),
    }[kind]


def novelty(
    recs: pl.DataFrame, train: pl.DataFrame, users: pl.DataFrame, ks, d: Dialect
) -> pl.DataFrame:
    """Per-user ``novelty@k``. rectools (MeanInvUserFreq): mean over the list cut at k of
    -log2(c_i / N), c_i distinct train users of item i (1 for an item not in train), N distinct
    train users. msrec (``novelty``): -log2(c_i / T), c_i train rows of item i, T train rows,
    averaged over all recommendation rows, an item not in train adding 0 (the per-user value is the user's sum and its count,
    averaged as a ratio by :func:`evaluate_dialect`)."""
    if d.novelty == "rectools":
        pairs = train.select(USER, ITEM).unique()
        total = pairs.get_column(USER).n_unique()
        pop = pairs.group_by(ITEM).agg(pl.len().cast(pl.Float64).alias("c"))
    else:  # msrec counts interactions, not users
        total = train.height
        pop = train.group_by(ITEM).agg(pl.len().cast(pl.Float64).alias("c"))
    # an item not in train: RecTools counts it as seen by one user; Microsoft's inner merge
    # drops it from the sum but not from the number of rows (novelty 0)
    unseen = -math.log2(1.0 / total) if d.novelty == "rectools" else 0.0
    rows = (
        recs.select(USER, ITEM, "rank")
        .join(pop, on=ITEM, how="left")
        .with_columns(
            pl.when(pl.col("c").is_null())
            .then(pl.lit(unseen))
            .otherwise(-(pl.col("c") / float(total)).log(2))
            .alias("nov")
        )
    )
    aggs = []
    for k in ks:
        inside = pl.col("rank") <= k
        aggs += [
            (pl.col("nov") * inside.cast(pl.Float64)).sum().alias(f"novelty_sum@{k}"),
            inside.cast(pl.Float64).sum().alias(f"novelty_rows@{k}"),
        ]
    per_user = users.select(USER).join(
        rows.group_by(USER).agg(aggs), on=USER, how="left", maintain_order="left"
    )
    return per_user


def coverage(recs: pl.DataFrame, train: pl.DataFrame, ks, d: Dialect) -> dict[str, float]:
    """``coverage@k`` over all the lists. rectools (CatalogCoverage(k, normalize=True)): distinct
    items within k, including items outside train, / distinct train items. msrec
    (catalog_coverage on the lists cut at k): the same ratio."""
    n_items = train.get_column(ITEM).n_unique()
    out = {}
    for k in ks:
        listed = recs.filter(pl.col("rank") <= k).get_column(ITEM).n_unique()
        out[f"coverage@{k}"] = listed / n_items if n_items else 0.0
    return out


def evaluate_dialect(
    recs: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    ks,
    dialect: str,
    train: pl.DataFrame | None = None,
    cold_users: pl.Series | None = None,
    item_categories: pl.DataFrame | None = None,
    source: str = "recommendations",
):
    """Score validated lists (``user_id, item_id, rank[, score]``, every user's list, in the
    truth or not) against ``truth`` (its rows as given: repeats matter to some dialects) the way
    library ``dialect`` does. Returns a :class:`harness.metrics.Evaluation`; metrics the library
    does not offer are left out and named in a notice."""
    from harness.metrics import SEGMENTS, Evaluation, _metric_order, _segments, evaluate

    d = dialect if isinstance(dialect, Dialect) else get(dialect)
    if d.name == "harness":
        return evaluate(
            recs,
            truth.unique(),
            ks=ks,
            train=train,
            cold_users=cold_users,
            item_categories=item_categories,
            source=source,
        )
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be positive integers, got {ks}")
    truth = truth.select(USER, ITEM)
    keep = [c for c in (USER, ITEM, "rank", Columns.SCORE, INPUT_ROW) if c in recs.columns]
    recs = recs.select(keep)
    # ids compared exactly, as harness does (harness.ids)
    recs, truth = align_ids(recs, truth, source=source)
    notices = check_overlap(recs, truth, source=source)
    if train is not None:
        train, _ = align_ids(train, truth, source="the catalogue")
    recs = order_ties(recs, d).filter(pl.col("rank") <= ks[-1])
    missing = offered(d, METRICS)
    if missing:
        notices.append(f"dialect {d.name} ({d.library}) has no {', '.join(missing)}")
    users = _users(recs, truth, ks[-1], d)
    users = _segments(users, train, cold_users)
    per_user = users.select(USER, "segment", "in_truth", "listed").join(
        ranking(recs, truth, users, ks, d), on=USER, how="left", maintain_order="left"
    )
    ratio_values: dict[str, dict[str, float]] = {}
    if "novelty" in d.metrics and d.novelty and (train is None or USER not in train.columns):
        notices.append("novelty skipped: no train interactions")
    elif "novelty" in d.metrics and d.novelty and train is not None:
        nov = novelty(recs, train, users, ks, d)
        per_user = per_user.join(nov, on=USER, how="left", maintain_order="left")
    names = [c for c in per_user.columns if "@" in c and not c.startswith("novelty_")]
    # users a metric does not average over get null (left out of the mean)
    per_user = per_user.with_columns(
        pl.when(_averaged(d, c.split("@")[0])).then(pl.col(c)).otherwise(None).alias(c)
        for c in names
    )
    metrics: dict[str, dict[str, float]] = {}
    present = set(per_user.get_column("segment").unique().to_list())
    for segment in SEGMENTS:
        if segment != "all" and segment not in present:
            continue
        rows = per_user if segment == "all" else per_user.filter(pl.col("segment") == segment)
        values = {}
        if rows.height:
            means = rows.select(pl.col(names).mean()).row(0, named=True)
            values = {c: float(v) for c, v in means.items() if v is not None}
        for k in ks:
            if f"novelty_sum@{k}" not in rows.columns:
                continue
            s = (
                rows.filter(pl.col("listed"))
                .select(pl.col(f"novelty_sum@{k}").sum(), pl.col(f"novelty_rows@{k}").sum())
                .row(0)
            )
            if d.novelty == "msrec":  # one mean over every recommendation row
                if s[1]:
                    values[f"novelty@{k}"] = s[0] / s[1]
            else:  # rectools: mean over the users with a list of the per-user means
                per = (
                    rows.filter(pl.col("listed") & (pl.col(f"novelty_rows@{k}") > 0))
                    .select((pl.col(f"novelty_sum@{k}") / pl.col(f"novelty_rows@{k}")).mean())
                    .item()
                )
                if per is not None:
                    values[f"novelty@{k}"] = float(per)
        if "coverage" in d.metrics and d.coverage and train is not None:
            seg_users = rows.filter(pl.col("listed")).get_column(USER)
            values.update(
                coverage(recs.filter(pl.col(USER).is_in(seg_users.implode())), train, ks, d)
            )
        metrics[segment] = values
    if "coverage" in d.metrics and d.coverage and train is None:
        notices.append("coverage skipped: no train items (catalogue)")
    order = {m: i for i, m in enumerate(_metric_order(ks))}
    metrics = {
        s: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], len(order))))
        for s, v in metrics.items()
    }
    novelty_cols = [c for c in per_user.columns if c.startswith("novelty_sum@")]
    per_user = per_user.with_columns(
        pl.when(pl.col("listed"))
        .then(pl.col(c) / pl.col(c.replace("_sum", "_rows")))
        .alias(c.replace("_sum", ""))
        for c in novelty_cols
    )
    per_user = per_user.select(
        USER, "segment", *[c for c in per_user.columns if "@" in c and "novelty_" not in c]
    )
    del ratio_values
    return Evaluation(metrics=metrics, per_user=per_user, notices=notices)
