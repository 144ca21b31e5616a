"""Time and peak memory of each stage of ``submit`` at full scale.

    flock /tmp/harness-bench.lock python benchmarks/submit.py [--dataset synthetic-kion]
        [--recommender popular] [--k 100] [--repeat 3] [--home DIR]

Prepares the dataset once (not timed), then submits ``--repeat`` times and prints, per stage, the
median seconds and the parent's peak RSS reached by the end of the stage (the parent's peak is
monotone, so the figure of the last stage is the whole run's). Target (issue 5): every stage except
the worker's fit and recommend together <= 60 s, parent <= 6 GiB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/baselines.py would shadow the `baselines` package of the recommenders
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

STAGES = ("load", "handoff", "spawn", "fit", "recommend", "validate", "score", "store")
WORKER_STAGES = ("fit", "recommend")


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic-kion")
    ap.add_argument("--recommender", default="popular")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()

    from harness.datasets import prepare
    from harness.runner import submit

    home = args.home or Path(tempfile.mkdtemp(prefix="harness-bench-"))
    t = time.perf_counter()
    prepare(args.dataset, home=home)
    print(f"prepared {args.dataset} in {time.perf_counter() - t:.1f} s (home {home})")

    seconds: dict[str, list[float]] = {s: [] for s in STAGES}
    memory: dict[str, float] = {}
    totals, worker_peaks = [], []
    for _ in range(args.repeat):
        def progress(stage, state, details):
            if state == "done" and stage in seconds:
                seconds[stage].append(details["seconds"])
                memory[stage] = max(memory.get(stage, 0.0), peak_rss_gib())

        t = time.perf_counter()
        try:
            run = submit(home, args.recommender, dataset=args.dataset, k=args.k, progress=progress)
        except Exception as exc:  # report the stages that did run
            print(f"submit failed: {type(exc).__name__}: {exc}")
            break
        totals.append(time.perf_counter() - t)
        worker_peaks.append((run["peak_memory_bytes"] or 0) / (1 << 30))

    print(f"\n{args.recommender} on {args.dataset}, k={args.k}, median of {args.repeat} runs")
    print(f"{'stage':<12}{'seconds':>10}{'parent peak GiB':>18}")
    overhead = 0.0
    for stage in STAGES:
        if not seconds[stage]:
            continue
        median = statistics.median(seconds[stage])
        if stage not in WORKER_STAGES:
            overhead += median
        print(f"{stage:<12}{median:>10.2f}{memory.get(stage, 0):>18.2f}")
    if totals:
        print(f"{'total':<12}{statistics.median(totals):>10.2f}")
    print(f"harness overhead (all but fit + recommend): {overhead:.1f} s (target <= 60 s); "
          f"parent peak {max(memory.values(), default=0):.2f} GiB (target <= 6 GiB)"
          + (f"; worker peak {statistics.median(worker_peaks):.2f} GiB" if worker_peaks else ""))


if __name__ == "__main__":
    main()
