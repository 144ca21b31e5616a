"""Fit + recommend k=100 for every truth user, per baseline: wall time and peak RSS.

    flock /tmp/harness-bench.lock python benchmarks/fit_baselines.py [--dataset synthetic-kion]
        [--models popular,als,...] [--repeats 3] [--threads 2] [--standin]

The split comes from ``harness.datasets.prepare(dataset)`` (full-scale ``synthetic-kion`` by
default); ``--standin`` generates a KION-sized table here instead (962k users, 15.7k items, 5.5M
interactions, Zipf popularity, last 7 days as truth) for when the dataset is not available.
Each model runs in its own subprocess so that its peak RSS is its own; ``als-direct`` times
implicit's ALS used directly on the same data (CSR build + fit + top-k), to measure the wrapper's
overhead. Times exclude reading the parquet files; RSS includes them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "popular": {},
    "personal-popular": {},
    "itemknn": {},
    "itemknn-bm25": {"weighting": "bm25"},
    "als": {"factors": "64", "iterations": "15"},
    "als-direct": {"factors": 64, "iterations": 15},
    "bpr": {"factors": "64"},
    "ease": {},
    "userknn": {},
    "random": {},
}
K = 100


def _standin(out: Path, seed: int = 0) -> None:
    """A KION-sized synthetic table: skewed users and items, 150 days, truth = last 7 days."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_users, n_items, n_rows = 962_179, 15_706, 5_476_251
    user_w = rng.pareto(1.5, n_users) + 1.0
    item_w = 1.0 / np.arange(1, n_items + 1) ** 1.1
    users = rng.choice(n_users, size=n_rows, p=user_w / user_w.sum())
    # items: a popularity draw mixed with a per-user taste (user-dependent offset in a ring)
    taste = rng.integers(0, n_items, n_users)
    pop_draw = rng.choice(n_items, size=n_rows, p=item_w / item_w.sum())
    local = (taste[users] + rng.geometric(0.02, n_rows)) % n_items
    items = np.where(rng.random(n_rows) < 0.5, pop_draw, local)
    start = np.datetime64("2021-03-13T00:00:00", "us")
    seconds = rng.integers(0, 150 * 86400, n_rows)
    frame = pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": start + seconds.astype("timedelta64[s]"),
        }
    )
    frame = frame.unique(["user_id", "item_id"], keep="first")
    cutoff = frame["timestamp"].max() - np.timedelta64(7, "D")
    train = frame.filter(pl.col("timestamp") < cutoff).with_columns(weight=pl.lit(1.0, pl.Float32))
    truth = frame.filter(pl.col("timestamp") >= cutoff).select("user_id", "item_id")
    truth = truth.join(train.select("user_id", "item_id"), on=["user_id", "item_id"], how="anti")
    train.write_parquet(out / "train.parquet")
    truth.select("user_id").unique().sort("user_id").write_parquet(out / "users.parquet")
    (out / "meta.json").write_text(json.dumps({"source": "stand-in", "cutoff": str(cutoff)}))


def _prepared(out: Path, dataset: str, home: Path) -> None:
    from harness.datasets import prepare
    from harness.store.splits import load_split

    prepare(dataset, home=home)
    split = load_split(home, dataset, parts=("train", "test_users"))
    split.train.write_parquet(out / "train.parquet")
    split.test_users.select("user_id").write_parquet(out / "users.parquet")
    cutoff = str(split.cutoff) if split.cutoff else None
    (out / "meta.json").write_text(json.dumps({"source": dataset, "cutoff": cutoff}))


def _worker(name: str, folder: Path, threads: int) -> dict:
    import polars as pl

    from harness.api import TrainData

    train = pl.read_parquet(folder / "train.parquet")
    users = pl.read_parquet(folder / "users.parquet").get_column("user_id")
    params = MODELS[name]
    t0 = time.perf_counter()
    if name == "als-direct":
        rows = _als_direct(train, users, threads, params)
    else:
        from harness import plugins

        data = TrainData(train, seed=0, n_threads=threads)
        model = plugins.build(name.split("-bm25")[0], params)
        model.fit(data)
        t_fit = time.perf_counter() - t0
        rows = model.recommend(users, K).height
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {
        "model": name,
        "wall_s": wall,
        "fit_s": t_fit if name != "als-direct" else None,
        "peak_rss_gib": rss,
        "rows": rows,
        "users": users.len(),
        "train_rows": train.height,
    }


def _als_direct(train, users, threads: int, params: dict) -> int:
    """implicit ALS by hand: the floor the wrapper is measured against."""
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_ids, rows = np.unique(train["user_id"].to_numpy(), return_inverse=True)
    item_ids, cols = np.unique(train["item_id"].to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix(
        (train["weight"].to_numpy(), (rows, cols)),
        shape=(len(user_ids), len(item_ids)),
        dtype=np.float32,
    )
    wanted = np.searchsorted(user_ids, users.to_numpy())
    wanted = wanted[
        (wanted < len(user_ids))
        & (user_ids[np.minimum(wanted, len(user_ids) - 1)] == users.to_numpy())
    ]
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params["factors"],
            iterations=params["iterations"],
            num_threads=threads,
            random_state=0,
        )
        model.fit(matrix, show_progress=False)
        ids, _ = model.recommend(wanted, matrix[wanted], N=K)
    return int(ids.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic-kion")
    parser.add_argument("--standin", action="store_true", help="generate a KION-sized table here")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data-dir", type=Path, help="reuse a folder written by an earlier run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.data_dir, args.threads)))
        return
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-baselines-"))
    if not (folder / "train.parquet").exists():
        t0 = time.perf_counter()
        if args.standin:
            _standin(folder)
        else:
            _prepared(folder, args.dataset, Path(tempfile.mkdtemp(prefix="bench-home-")))
        print(f"data ready in {time.perf_counter() - t0:.1f} s: {folder}", file=sys.stderr)
    meta = json.loads((folder / "meta.json").read_text())
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    results = []
    for name in args.models.split(","):
        runs = []
        for _ in range(args.repeats):
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    name,
                    "--data-dir",
                    str(folder),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                break
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if not runs:
            continue
        row = dict(runs[0])
        row["wall_s"] = statistics.median(r["wall_s"] for r in runs)
        row["walls"] = [round(r["wall_s"], 1) for r in runs]
        row["peak_rss_gib"] = max(r["peak_rss_gib"] for r in runs)
        results.append(row)
        fit = f"{row['fit_s']:.1f}" if row.get("fit_s") is not None else "-"
        print(
            f"{name:18s} wall {row['wall_s']:8.1f} s (runs {row['walls']})  fit {fit:>7s} s  "
            f"peak RSS {row['peak_rss_gib']:5.2f} GiB  rows {row['rows']}",
            flush=True,
        )
    walls = {r["model"]: r["wall_s"] for r in results}
    if "als" in walls and "als-direct" in walls:
        overhead = walls["als"] / walls["als-direct"] - 1
        print(f"als wrapper overhead vs implicit directly: {overhead:+.1%}")
    first = results[0] if results else {}
    print(
        f"data: {meta['source']}, {first.get('train_rows')} train rows, "
        f"{first.get('users')} truth users, k={K}, threads={args.threads}"
    )


if __name__ == "__main__":
    main()
