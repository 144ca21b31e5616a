"""Speed of the board statistics (CIs and rank bands) at scale and on the embedded size.

    flock /tmp/harness-bench.lock python benchmarks/stats.py --repeat 3 [--users 1000000] [--runs 10]

Builds (once, not timed) two homes with ``--runs`` stored runs each: one with ``--users`` users
(1M by default), one with 608 (the embedded default split's test users). Runs are written through
the store like any scored run: 48 per-user metrics each (precision, recall, map, ndcg, mrr,
hit_rate, novelty, diversity at k = 1, 5, 10, 20, 50, 100), values drawn so that runs differ by a
few percent and correlate per user, as real models do. Then it times, median of ``--repeat``:

- the statistics alone (``harness.stats.board_statistics`` on the users x runs matrix, 1000
  resamples: bootstrap CIs, all-pairs randomization tests, Holm, bands), in this process;
- ``harness --home H leaderboard --dataset bench`` as a user types it: the whole process (start,
  imports, reading the per-user values from DuckDB, statistics, drawing), and its peak RSS;
- the same with ``--ci-resamples 1`` (everything but the resampling) for the share of statistics.

Targets (issue 10): 10 runs x 1M users x 1000 resamples <= 15 s on 2 cores; <= 1 s at 608 users.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

FAMILIES = ("precision", "recall", "map", "ndcg", "mrr", "hit_rate", "novelty", "diversity")
KS = (1, 5, 10, 20, 50, 100)


def build_home(home: Path, users: int, runs: int) -> None:
    import numpy as np
    import polars as pl

    from harness.store import runs as store
    from harness.store.splits import PreparedSplit, save_split, split_meta

    try:
        split_meta(home, "bench")
        return
    except Exception:  # noqa: BLE001 - not built yet
        pass
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    save_split(
        home,
        PreparedSplit(
            dataset="bench",
            split="s",
            fingerprint="fp-bench",
            protocol={"protocol": "ratio"},
            cutoff=None,
            train=pl.DataFrame({"user_id": [0], "item_id": [0]}),
            truth=pl.DataFrame({"user_id": [0], "item_id": [0]}),
            test_users=pl.DataFrame({"user_id": [0], "cold": [False]}),
            info={"is_default": True, "test_users": users},
        ),
    )
    rng = np.random.default_rng(0)
    ease = rng.beta(0.6, 4.0, users)  # how findable each user's items are
    ids = pl.Series("user_id", np.arange(users)).cast(pl.Utf8)
    segment = pl.Series("segment", np.where(rng.random(users) < 0.1, "cold", "warm"))
    for r in range(runs):
        skill = 0.6 + 0.04 * r
        cols = {}
        for k in KS:
            hit = (rng.random(users) < np.clip(ease * skill * (1 + np.log(k)), 0, 1)).astype(
                np.float64
            )
            for fam in FAMILIES:
                if fam in ("novelty", "diversity"):
                    cols[f"{fam}@{k}"] = rng.random(users) * (8 if fam == "novelty" else 1)
                else:
                    cols[f"{fam}@{k}"] = hit * rng.random(users) if fam != "hit_rate" else hit
        per_user = pl.DataFrame({"user_id": ids, "segment": segment, **cols})
        run_id = f"bench-{r:02d}"
        store.create_run(
            home,
            store.Run(
                run_id=run_id,
                recommender=f"model-{r}",
                k=100,
                dataset="bench",
                split="s",
                fingerprint="fp-bench",
                started_at=datetime(2026, 1, 1),
            ),
        )
        means = {c: float(v.mean()) for c, v in cols.items()}
        store.finish_run(home, run_id, metrics={"all": means}, per_user=per_user, fields={})
    print(
        f"built {home}: {runs} runs x {users:,} users in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )


def time_library(home: Path, repeat: int) -> tuple[float, int]:
    import numpy as np

    from harness import stats
    from harness.store.runs import user_values

    ids = [f"bench-{r:02d}" for r in range(100)]
    _, values = user_values(home, ids, ["ndcg@10"])
    matrix = np.stack(list(values.values()), axis=1)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        stats.board_statistics(matrix)
        times.append(time.perf_counter() - t)
    return statistics.median(times), matrix.shape[0]


def time_command(home: Path, repeat: int, *extra: str) -> tuple[float, float, float]:
    """(median wall s, median CPU s = user + sys of the process and its threads, peak RSS GiB) of
    `harness leaderboard`; CPU seconds say what wall seconds would be on idle cores when the
    machine is shared."""
    cmd = [
        str(Path(sys.executable).with_name("harness")),
        "--home",
        str(home),
        "leaderboard",
        "--dataset",
        "bench",
        "--format",
        "json",
        *extra,
    ]
    walls, cpus, peak = [], [], 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        peak = max(peak, after.ru_maxrss)
    return statistics.median(walls), statistics.median(cpus), peak / (1 << 20)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--root", default="/tmp/harness-bench-stats")
    args = ap.parse_args()
    root = Path(args.root)
    rows = []
    for users in (608, args.users):
        home = root / f"u{users}-r{args.runs}"
        build_home(home, users, args.runs)
        lib, n = time_library(home, args.repeat)
        full, full_cpu, rss = time_command(home, args.repeat)
        bare, bare_cpu, _ = time_command(home, args.repeat, "--ci-resamples", "1")
        rows.append((f"{args.runs} runs x {n:,} users", lib, full, full_cpu, bare, bare_cpu, rss))
    load = os.getloadavg()[0]
    print(
        f"\n1000 resamples, medians of {args.repeat}; load average {load:.1f} on "
        f"{os.cpu_count()} cores; wall (CPU) seconds\n"
    )
    print(
        "| board | statistics alone | `harness leaderboard` | same, --ci-resamples 1 | peak RSS (GiB) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, lib, full, full_cpu, bare, bare_cpu, rss in rows:
        print(
            f"| {name} | {lib:.2f} | {full:.2f} ({full_cpu:.1f}) | {bare:.2f} ({bare_cpu:.1f}) | {rss:.2f} |"
        )


if __name__ == "__main__":
    main()
