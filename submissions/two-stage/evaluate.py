"""Submit two-stage and its candidate generators through `harness submit` and print NDCG@10.

    python submissions/two-stage/evaluate.py [--dataset ml-latest-small] [--home DIR] [-p key=value]...

Everything goes through the command line a user types (`harness data prepare`, `harness submit
--json`), so the numbers are the leaderboard's own. Without --home a temporary home is used and
thrown away. ``-p`` pairs go to two-stage only; the generators run with their defaults, which are
also the settings two-stage fits them with.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODELS = ["popular", "als", "itemknn", "two-stage"]


def harness(home: str, *args: str) -> str:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "--home", home, *args],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"harness {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--home", default=None)
    parser.add_argument("-p", dest="params", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or tmp
        harness(home, "data", "prepare", args.dataset)
        rows = []
        for name in MODELS:
            extra = [f"-p{p}" for p in args.params] if name == "two-stage" else []
            start = time.perf_counter()
            run = json.loads(harness(home, "submit", name, "--dataset", args.dataset, "--json", *extra))
            seconds = time.perf_counter() - start
            segments = run.get("segments", {})
            rows.append((name, run["metrics"]["ndcg@10"],
                         segments.get("warm", {}).get("ndcg@10", float("nan")),
                         segments.get("cold", {}).get("ndcg@10", float("nan")), seconds))
    print(f"dataset {args.dataset} (default split), k=100 lists, NDCG@10 by segment")
    print(f"| model | ndcg@10 all | warm | cold | wall s |\n| --- | --- | --- | --- | --- |")
    for name, ndcg, warm, cold, seconds in rows:
        print(f"| {name} | {ndcg:.4f} | {warm:.4f} | {cold:.4f} | {seconds:.1f} |")
    best = max(r[1] for r in rows if r[0] != "two-stage")
    ours = next(r[1] for r in rows if r[0] == "two-stage")
    print(f"two-stage {'beats' if ours > best else 'does NOT beat'} its best generator "
          f"({ours:.4f} vs {best:.4f})")


if __name__ == "__main__":
    main()
