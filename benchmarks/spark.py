"""Benchmark: `harness score` with the local engine versus `--engine spark --spark-master local[2]`.

    flock /tmp/harness-bench.lock python benchmarks/spark.py [--repeat 3] [--sizes 100k,1m]

The same seeded files as benchmarks/metrics.py (N users x top-100, 20k Zipf items, 1-30 relevant
items per user; written once under benchmarks/out/metrics/). Each run is the whole command as a user
types it, in a fresh process: `harness score --recs recs.parquet --truth truth.parquet --k 1 ...
--k 100 --json`, timed from start to exit (Python start, JVM start and Spark session included).
Peak memory is the largest sum of resident memory over the process tree (harness and, for Spark,
its JVM), sampled every 0.1 s. The Spark driver gets `--driver-memory` (default 6g) through
PYSPARK_SUBMIT_ARGS, as a user would set it. Prints medians, the ratio Spark / local, and checks
that both engines print the same numbers (to 1e-9).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from metrics import OUT, SIZES, generate  # noqa: E402  (the same data as the metrics benchmark)

KS = (1, 5, 10, 20, 50, 100)


def _tree_rss(proc: psutil.Process) -> int:
    """Resident memory of ``proc`` and its descendants; processes that exit while they are listed
    or read (the JVM's helpers, the command itself at its end) count as 0."""
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # the command has exited
        return 0
    total = 0
    for p in tree:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_once(engine: str, data: Path, driver_memory: str) -> dict:
    harness = str(Path(sys.executable).with_name("harness"))
    cmd = [
        harness,
        "score",
        "--recs",
        str(data / "recs.parquet"),
        "--truth",
        str(data / "truth.parquet"),
        *(a for k in KS for a in ("--k", str(k))),
        "--json",
    ]
    env = dict(os.environ)
    if engine == "spark":
        cmd += ["--engine", "spark", "--spark-master", "local[2]"]
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
    peak = [0]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(watched))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return {"seconds": seconds, "peak_gib": peak[0] / 2**30, "metrics": json.loads(out)["metrics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, notes = [], []
    for size in args.sizes.split(","):
        data = OUT / f"{size}-seed{args.seed}"
        if not (data / "meta.json").exists():
            generate(SIZES[size], args.seed, data)
        results = {}
        for engine in args.engines.split(","):
            runs = []
            for i in range(args.repeat):
                runs.append(run_once(engine, data, args.driver_memory))
                print(
                    f"{size} {engine} run {i + 1}: {runs[-1]['seconds']:.1f} s, "
                    f"peak {runs[-1]['peak_gib']:.2f} GiB",
                    flush=True,
                )
            results[engine] = runs
            rows.append(
                {
                    "size": size,
                    "engine": engine,
                    "runs": len(runs),
                    "seconds": statistics.median(r["seconds"] for r in runs),
                    "peak_gib": statistics.median(r["peak_gib"] for r in runs),
                }
            )
        if {"local", "spark"} <= set(results):
            a, b = results["local"][0]["metrics"], results["spark"][0]["metrics"]
            worst = max(abs(a[m] - b[m]) for m in a)
            same = set(a) == set(b) and worst <= 1e-9
            notes.append(
                f"{size}: {len(a)} metrics, largest difference {worst:.1e} "
                f"({'equal' if same else 'DIFFERENT'})"
            )
    base = {r["size"]: r for r in rows if r["engine"] == "local"}
    print(f"\nload average {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
    print("| size | engine | runs | wall s (median) | peak RSS GiB (tree) | time / local |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = r["seconds"] / base[r["size"]]["seconds"] if r["size"] in base else float("nan")
        print(
            f"| {r['size']} | {r['engine']} | {r['runs']} | {r['seconds']:.1f} | "
            f"{r['peak_gib']:.2f} | {ratio:.1f}x |"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
