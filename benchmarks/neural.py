"""Choose the neural baselines' defaults on a validation split carved from train by time, then
report the test NDCG@10 of the chosen settings against ``popular``.

    flock /tmp/harness-bench.lock python benchmarks/neural.py [--threads 1] [--quick]

Data: the embedded dataset's default split (``harness.datasets.prepare("ml-latest-small")``).
When that function is not available yet, a stand-in built the same way from
/work/shared/data/ml-latest-small (all ratings, global temporal split at the 90% time quantile,
truth without items already in train).

Validation: the last ``VALID_SHARE`` of the *train* interactions by time are held out (the same
shape as the test protocol: a global cutoff; validation truth without items seen before it). Every
setting in the grid is fitted on the earlier part and scored there; the truth is touched only by
the final line, for the defaults chosen from the validation table.
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
VALID_SHARE = 0.1
OLD = {"lr": "0.002", "dropout": "0.2"}
GRID = {
    "popular": [{}],
    "dssm": [{"epochs": "5"}, {"epochs": "10"}, {"epochs": "20"},
             {"epochs": "10", "temperature": "0.1"}, {"epochs": "10", "logq": "false"},
             {"epochs": "10", "loss": "triplet"}, {"epochs": "10", "temperature": "0.2"},
             {"epochs": "10", "temperature": "0.1", "dropout": "0.3"}],
    # rows written in full: the first ones were tried when the defaults were lr=0.002, dropout=0.2
    "sasrec": [dict(OLD, epochs="10"), dict(OLD, epochs="20"), dict(OLD, epochs="40"),
               dict(OLD, max_len="100"), dict(OLD, negatives="128"), dict(OLD, dim="128"),
               dict(OLD, blocks="1"), dict(OLD, lr="0.005"), dict(OLD, dropout="0.5"),
               {"lr": "0.005", "dropout": "0.5"}],
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


def ndcg(recs: pl.DataFrame, truth: pl.DataFrame, train: pl.DataFrame) -> float:
    """NDCG@K through harness.metrics when present, else the same formula here (DESIGN.md)."""
    try:
        from harness.metrics import evaluate
        from harness.recs import validate_recommendations
    except ImportError:
        pass
    else:
        normalised, _ = validate_recommendations(recs, source="neural", k=K)
        return evaluate(normalised, truth, ks=(K,), train=train).metrics["all"][f"ndcg@{K}"]
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
    parser.add_argument("--home", type=Path, default=None, help="HARNESS_HOME for prepare")
    args = parser.parse_args()
    import tempfile

    home = args.home or Path(tempfile.mkdtemp(prefix="neural-bench-"))
    train, truth, users, items, cutoff = load(home)
    valid_cut = train.get_column("timestamp").quantile(1 - VALID_SHARE, "nearest")
    fit_part, valid_truth = _cut(train, valid_cut)
    print(f"validation: train < {valid_cut} ({fit_part.height} rows), "
          f"{valid_truth.get_column('user_id').n_unique()} users, {valid_truth.height} truth rows")
    print(f"{'model':8} {'params':34} {'valid ndcg@10':>13} {'fit s':>7}")
    best = {}
    grid = {} if args.test_only else QUICK if args.quick else GRID
    for name, settings in grid.items():
        for params in settings:
            score, fit = run(name, params, fit_part, valid_truth, users, items, valid_cut,
                             args.threads)
            print(f"{name:8} {str(params):34} {score:13.4f} {fit:7.1f}", flush=True)
            if score > best.get(name, (-1.0,))[0]:
                best[name] = (score, params)
    print(f"\ntest: train {train.height} rows, {truth.get_column('user_id').n_unique()} users, "
          f"{truth.height} truth rows (defaults as shipped, chosen above)")
    print(f"{'model':8} {'test ndcg@10':>12} {'fit s':>7}  best on validation")
    for name in ("popular", "dssm", "sasrec"):
        score, fit = run(name, {}, train, truth, users, items, cutoff, args.threads)
        print(f"{name:8} {score:12.4f} {fit:7.1f}  {best.get(name, (0, '-'))[1]}", flush=True)


if __name__ == "__main__":
    main()
