"""Choose recommenders' defaults on a validation split carved from train (never the truth).

    nice -n 10 python benchmarks/neural.py --home H [--split ratio] [--threads 1] \\
        sasrec 'sasrec:loss=gbce' 'dssm:logq=false' popular als ...

Data: the prepared split of ml-latest-small in ``--home`` (``harness --home H data prepare
ml-latest-small``; ``--split`` names one, default: the dataset's default). Its *train* part is cut
again the way the test protocol cuts (each user's latest ``--ratio`` of interactions by time, the
per-user temporal split; the validation truth leaves out items the user already has), every
setting is fitted on the earlier part and scored by NDCG@10 on the later one, all through the
harness's own metrics. Each setting prints one row: mean NDCG@10, the paired difference to the
first setting with a bootstrap 95% interval over users, and the fit seconds. The test truth is
never read: only the train part of the split is loaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from harness.api import TrainData, build_recommender  # noqa: E402

K = 10


def inner_split(train: pl.DataFrame, ratio: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-user temporal cut of ``train``: each user's latest ``ratio`` (at least one for users
    with two or more) -> validation truth (without items already in the earlier part)."""
    inter = train.sort(["user_id", "timestamp", "item_id"])
    n = pl.len().over("user_id")
    n_out = (n * ratio).floor().cast(pl.Int64)
    n_out = pl.when((n_out == 0) & (n >= 2)).then(1).otherwise(n_out)
    from_end = pl.int_range(pl.len()).reverse().over("user_id")
    marked = inter.with_columns(_v=from_end < n_out)
    fit = marked.filter(~pl.col("_v")).drop("_v")
    truth = (
        marked.filter(pl.col("_v"))
        .select("user_id", "item_id")
        .unique()
        .join(fit.select("user_id", "item_id"), on=["user_id", "item_id"], how="anti")
    )
    return fit, truth


def per_user_ndcg(recs: pl.DataFrame, truth: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """user_id, ndcg@K of every validation user, through harness.metrics."""
    from harness.metrics import evaluate
    from harness.recs import validate_recommendations

    normalised, _ = validate_recommendations(recs, source="validation", k=K)
    result = evaluate(normalised, truth, ks=(K,), train=train)
    per_user = result.per_user
    return per_user.select(pl.col("user_id").cast(pl.Utf8), pl.col(f"ndcg@{K}"))


def paired(scores: pl.DataFrame, base: pl.DataFrame, rng: np.random.Generator) -> str:
    """Mean per-user NDCG@K difference to ``base`` with a bootstrap 95% CI (2000 resamples)."""
    d = (
        scores.join(base, on="user_id", suffix="_0")
        .select(pl.col(f"ndcg@{K}") - pl.col(f"ndcg@{K}_0"))
        .to_series()
        .to_numpy()
    )
    boot = d[rng.integers(0, len(d), (2000, len(d)))].mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    return f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]"


def parse(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    # values that are lists themselves use ";" (generators=als;ease)
    params = {k: v.replace(";", ",") for k, v in (p.split("=", 1) for p in rest.split(",") if p)}
    return name, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="NAME or NAME:key=value,key=value")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--split", default=None)
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from harness.store.splits import load_split

    split = load_split(args.home, args.dataset, args.split, parts=("train", "users", "items"))
    fit_part, truth = inner_split(split.train, args.ratio)
    users = truth.get_column("user_id").unique().sort()
    print(
        f"inner split of {args.dataset}: fit {fit_part.height} rows, validation {truth.height} "
        f"rows for {users.len()} users",
        flush=True,
    )
    first = None
    rng = np.random.default_rng(0)
    for spec in args.settings:
        name, params = parse(spec)
        data = TrainData(
            fit_part,
            users=split.users,
            items=split.items,
            cutoff=None,
            seed=args.seed,
            n_threads=args.threads,
        )
        start = time.perf_counter()
        model = build_recommender(name, **params)
        model.fit(data)
        fit = time.perf_counter() - start
        scores = per_user_ndcg(model.recommend(users, K), truth, fit_part)
        mean = scores.get_column(f"ndcg@{K}").mean()
        extra = ""
        if first is None:
            first = scores
        else:
            extra = f" vs {args.settings[0]}: {paired(scores, first, rng)}"
        best = getattr(model, "best_epoch_", None)
        epochs = f" best epoch {best}" if best else ""
        print(f"{spec:60} ndcg@{K} {mean:.4f}{extra}  fit {fit:.0f} s{epochs}", flush=True)


if __name__ == "__main__":
    main()
