"""Choose the neural baselines' defaults on a validation split carved from train by time, then
report the test NDCG@10 of the chosen settings against ``popular``.

    flock /tmp/harness-bench.lock python benchmarks/neural.py [--threads 1] [--quick] [--models sasrec]

Data: the embedded dataset's default split (``harness.datasets.prepare("ml-latest-small")``).
When that function is not available yet, a stand-in built the same way from
/work/shared/data/ml-latest-small (all ratings, global temporal split at the 90% time quantile,
truth without items already in train).

Validation: the train part is cut again at its own 70%, 80% and 90% time quantiles (three folds,
each the same shape as the test protocol: a global cutoff; validation truth without items seen
before it). Every setting in the grid is fitted on each fold's earlier part and scored there; the
table shows NDCG@10 over all validation users and over the warm ones (the only place models differ:
every model serves cold users by popularity), per fold and averaged. The truth is touched only by
the final lines, for the defaults chosen from the validation table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

# this folder holds a script named like the `baselines` package: keep it off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from harness import plugins  # noqa: E402
from harness.api import TrainData  # noqa: E402

K = 10
FOLDS = (0.7, 0.8, 0.9)
OLD = {"lr": "0.002", "dropout": "0.2", "negatives": "512", "target": "next"}
GRID = {
    "popular": [{}],
    "dssm": [{"epochs": "5"}, {"epochs": "10"}, {"epochs": "20"},
             {"epochs": "10", "temperature": "0.1"}, {"epochs": "10", "logq": "false"},
             {"epochs": "10", "loss": "triplet"}, {"epochs": "10", "temperature": "0.2"},
             {"epochs": "10", "temperature": "0.1", "dropout": "0.3"},
             {"history": "before"}],
    # rows written in full: the first ones were tried when the defaults were lr=0.002, dropout=0.2
    "sasrec": [dict(OLD, epochs="10"), dict(OLD, epochs="20"), dict(OLD, epochs="40"),
               dict(OLD, max_len="100"), dict(OLD, negatives="128"), dict(OLD, dim="128"),
               dict(OLD, blocks="1"), dict(OLD, lr="0.005"), dict(OLD, dropout="0.5"),
               dict(OLD, lr="0.005", dropout="0.5"),
               # session 2: targets drawn from all later items, full softmax (the defaults now)
               dict(OLD, target="future"), dict(OLD, negatives="0"),
               {"epochs": "10"}, {"epochs": "20"}, {"epochs": "30"},
               dict(OLD, target="future", epochs="30"), dict(OLD, target="future", epochs="60")],
}
QUICK = {"popular": [{}], "dssm": [{}], "sasrec": [{}]}


def load(home: Path):
    """(train, truth, users, items, cutoff) of the embedded default split, or the stand-in."""
    try:
        from harness.datasets import prepare
        from harness.store.splits import load_split
    except ImportError:
        return _standin()
    prepare("ml-latest-small", home=home)
    split = load_split(home, "ml-latest-small")
    return split.train, split.truth, split.users, split.items, split.cutoff


def _standin():
    root = Path("/work/shared/data/ml-latest-small")
    ratings = pl.read_csv(root / "ratings.csv").select(
        user_id=pl.col("userId"), item_id=pl.col("movieId"),
        timestamp=pl.from_epoch("timestamp", "s").cast(pl.Datetime("us")),
        weight=pl.lit(1.0, pl.Float32))
    cutoff = ratings.get_column("timestamp").quantile(0.9, "nearest")
    train, truth = _cut(ratings, cutoff)
    movies = pl.read_csv(root / "movies.csv").select(
        item_id=pl.col("movieId"), title="title",
        year=pl.col("title").str.extract(r"\((\d{4})\)\s*$").cast(pl.Int32),
        categories=pl.col("genres").str.split("|"))
    return train, truth, None, movies, cutoff


def _cut(frame: pl.DataFrame, cutoff):
    """Global temporal cut: before -> train; at/after -> truth minus items seen in train."""
    train = frame.filter(pl.col("timestamp") < cutoff)
    truth = (frame.filter(pl.col("timestamp") >= cutoff).select("user_id", "item_id").unique()
             .join(train, on=["user_id", "item_id"], how="anti"))
    return train, truth


def ndcg(recs: pl.DataFrame, truth: pl.DataFrame, train: pl.DataFrame) -> tuple[float, float]:
    """NDCG@K over (all, warm) truth users through harness.metrics when present, else the same
    formula here (DESIGN.md)."""
    try:
        from harness.metrics import evaluate
        from harness.recs import validate_recommendations
    except ImportError:
        pass
    else:
        normalised, _ = validate_recommendations(recs, source="neural", k=K)
        metrics = evaluate(normalised, truth, ks=(K,), train=train).metrics
        return metrics["all"][f"ndcg@{K}"], metrics["warm"][f"ndcg@{K}"]
    warm = truth.join(train.select("user_id").unique(), on="user_id", how="semi")
    return _ndcg(recs, truth), _ndcg(recs, warm)


def _ndcg(recs: pl.DataFrame, truth: pl.DataFrame) -> float:
    ranked = (recs.sort(["user_id", "score"], descending=[False, True], maintain_order=True)
              .with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id"))
              .filter(pl.col("rank") <= K))
    dcg = (ranked.join(truth, on=["user_id", "item_id"], how="semi").group_by("user_id")
           .agg(dcg=(1.0 / (pl.col("rank") + 1).log(2)).sum()))
    ideal = truth.group_by("user_id").len()
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, K + 2)))])
    ideal = ideal.with_columns(idcg=pl.Series(discounts[np.minimum(ideal["len"].to_numpy(), K)]))
    return ideal.join(dcg, on="user_id", how="left").select(
        (pl.col("dcg").fill_null(0.0) / pl.col("idcg")).mean()).item()


def run(name, params, train, truth, users, items, cutoff, threads):
    data = TrainData(train, users=users, items=items, cutoff=cutoff, seed=0, n_threads=threads)
    start = time.perf_counter()
    model = plugins.build(name, params)
    model.fit(data)
    fit = time.perf_counter() - start
    recs = model.recommend(truth.get_column("user_id").unique().sort(), K)
    return ndcg(recs, truth, train), fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--quick", action="store_true", help="one setting per model")
    parser.add_argument("--test-only", action="store_true", help="skip the validation grid")
    parser.add_argument("--models", default=None, help="comma-separated grid subset, e.g. sasrec")
    parser.add_argument("--home", type=Path, default=None, help="HARNESS_HOME for prepare")
    args = parser.parse_args()
    import tempfile

    home = args.home or Path(tempfile.mkdtemp(prefix="neural-bench-"))
    train, truth, users, items, cutoff = load(home)
    folds = []
    for q in FOLDS:
        valid_cut = train.get_column("timestamp").quantile(q, "nearest")
        fit_part, valid_truth = _cut(train, valid_cut)
        warm = valid_truth.join(fit_part, on="user_id", how="semi").get_column("user_id").n_unique()
        print(f"fold q{q}: train < {valid_cut} ({fit_part.height} rows), "
              f"{valid_truth.get_column('user_id').n_unique()} users ({warm} warm), "
              f"{valid_truth.height} truth rows")
        folds.append((valid_cut, fit_part, valid_truth))
    print(f"{'model':8} {'params':44} {'all (per fold) / warm (per fold)':>56} {'mean all':>8} "
          f"{'warm':>6} {'fit s':>6}")
    best = {}
    grid = {} if args.test_only else QUICK if args.quick else GRID
    if args.models:
        grid = {name: rows for name, rows in grid.items() if name in args.models.split(",")}
    for name, settings in grid.items():
        for params in settings:
            scores, fit = [], 0.0
            for valid_cut, fit_part, valid_truth in folds:
                score, seconds = run(name, params, fit_part, valid_truth, users, items, valid_cut,
                                     args.threads)
                scores.append(score)
                fit += seconds
            mean_all, mean_warm = (float(np.mean([s[j] for s in scores])) for j in (0, 1))
            per_fold = " ".join(f"{a:.4f}" for a, _ in scores) + " / " + " ".join(
                f"{w:.4f}" for _, w in scores)
            print(f"{name:8} {_show(params):44} {per_fold:>56} {mean_all:8.4f} {mean_warm:6.4f} "
                  f"{fit / len(folds):6.1f}", flush=True)
            if mean_all > best.get(name, (-1.0,))[0]:
                best[name] = (mean_all, params)
    print(f"\ntest: train {train.height} rows, {truth.get_column('user_id').n_unique()} users, "
          f"{truth.height} truth rows (defaults as shipped, chosen above)")
    print(f"{'model':8} {'test all':>8} {'warm':>6} {'fit s':>7}  best on validation")
    for name in ("popular", "dssm", "sasrec"):
        (score, warm), fit = run(name, {}, train, truth, users, items, cutoff, args.threads)
        print(f"{name:8} {score:8.4f} {warm:6.4f} {fit:7.1f}  {best.get(name, (0, '-'))[1]}",
              flush=True)


def _show(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


if __name__ == "__main__":
    main()
