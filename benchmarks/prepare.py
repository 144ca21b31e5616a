"""Benchmark: prepare synthetic-kion (generate 5.5M interactions, clean, split, store in DuckDB).

    flock /tmp/harness-bench.lock python benchmarks/prepare.py [--runs 3] [--dataset synthetic-kion]

Each run is a fresh process with a fresh home; prints wall time and peak RSS of each run and
their medians. Target on the 2-core machine: <= 30 s and <= 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
from pathlib import Path
t = time.perf_counter()
from harness.datasets import prepare
meta = prepare(sys.argv[1], home=Path(sys.argv[2]))
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"wall": wall, "rss_gib": rss, "info": meta["info"]}, default=str))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dataset", default="synthetic-kion")
    args = parser.parse_args()
    walls, rsss = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as home:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, args.dataset, home],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        walls.append(result["wall"])
        rsss.append(result["rss_gib"])
        info = result["info"]
        print(
            f"run {run + 1}: {result['wall']:.1f} s, peak RSS {result['rss_gib']:.2f} GiB "
            f"({info['interactions']} interactions, {info['users']} users, {info['items']} items, "
            f"train {info['train_rows']}, truth {info['truth_rows']}, test users {info['test_users']})"
        )
    print(
        f"median of {args.runs}: {statistics.median(walls):.1f} s, "
        f"peak RSS {statistics.median(rsss):.2f} GiB (target <= 30 s, <= 4 GiB)"
    )


if __name__ == "__main__":
    main()
