"""Time and peak memory of each stage of ``submit`` at full scale.

    flock /tmp/harness-bench.lock python benchmarks/submit.py --home /tmp/hb-S --repeat 3
        [--dataset synthetic-kion] [--split users-last1] [--recommender popular] [--k 100]

The shipped ``synthetic-kion`` split (temporal, last 7 days) asks for 114k users; the issue's scale
is every user (about a million), so the benchmark adds a split ``users-last1`` (each user's last
interaction is the truth: 957k test users, 96M listed items at k=100) through a registry file in
the home, and prepares it once (not timed).

Per stage it prints the median seconds over ``--repeat`` submissions, the parent's peak RSS during
the stage (sampled every 10 ms, the stage's own peak, not the run's) and, for the worker stages,
the worker's. Target (issue 5): every stage but the worker's fit and recommend <= 60 s together,
parent < 6 GiB.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import threading
import time
from pathlib import Path

STAGES = ("load", "handoff", "spawn", "fit", "recommend", "score", "store")
WORKER_STAGES = ("fit", "recommend")
EXTRA_SPLITS = {"users-last1": 'protocol = "leave-last"\nn = 1\n'}
GIB = 1 << 30


class MemorySampler:
    """Peak RSS of this process and of its children, per stage, sampled in a thread."""

    def __init__(self, every: float = 0.01) -> None:
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.peaks: dict[str, list[int]] = {}  # stage -> [parent peak, children peak]
        self.current: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _children_rss(self) -> int:
        total = 0
        for child in self.me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # noqa: BLE001 - it may exit between listing and reading
                pass
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            stage = self.current
            if stage is None:
                continue
            peak = self.peaks.setdefault(stage, [0, 0])
            peak[0] = max(peak[0], self.me.memory_info().rss)
            if stage in ("spawn", *WORKER_STAGES):
                peak[1] = max(peak[1], self._children_rss())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def registry_with_split(home: Path, dataset: str, split: str) -> Path | None:
    """A user registry file: the shipped entry of ``dataset`` plus the benchmark's split."""
    if split not in EXTRA_SPLITS:
        return None
    from harness.datasets.registry import SHIPPED

    lines, inside = [], False
    for line in SHIPPED.read_text().splitlines():
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            inside = header.group(1) == dataset or header.group(1).startswith(f"{dataset}.")
        if inside:
            lines.append(line)
    if not lines:
        raise SystemExit(f"{SHIPPED}: no [{dataset}] entry")
    path = home / "bench-datasets.toml"
    path.write_text("\n".join(lines) + f"\n[{dataset}.splits.{split}]\n{EXTRA_SPLITS[split]}")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic-kion")
    ap.add_argument(
        "--split",
        default="users-last1",
        help=f"a split of the dataset, or one of {', '.join(EXTRA_SPLITS)} (added)",
    )
    ap.add_argument("--recommender", default="popular")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, required=True)
    args = ap.parse_args()

    from harness.datasets import prepare
    from harness.runner import submit

    args.home.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    meta = prepare(
        args.dataset,
        home=args.home,
        split=args.split,
        registry_file=registry_with_split(args.home, args.dataset, args.split),
    )
    print(
        f"{args.dataset}/{args.split} ready in {time.perf_counter() - t:.1f} s: "
        f"{meta['info']['train_rows']:,} train rows, {meta['info']['test_users']:,} test users"
    )

    seconds: dict[str, list[float]] = {s: [] for s in STAGES}
    parent_peak: dict[str, list[float]] = {s: [] for s in STAGES}
    worker_peak: dict[str, list[float]] = {s: [] for s in STAGES}
    totals, listed = [], 0
    for _ in range(args.repeat):
        sampler = MemorySampler()

        def progress(stage, state, details, sampler=sampler):
            if state == "start":
                sampler.current = stage
            elif stage in seconds:
                seconds[stage].append(details["seconds"])

        t = time.perf_counter()
        try:
            run = submit(
                args.home,
                args.recommender,
                dataset=args.dataset,
                split=args.split,
                k=args.k,
                progress=progress,
            )
        except Exception as exc:  # report the stages that did run
            print(f"submit failed: {type(exc).__name__}: {exc}")
            break
        finally:
            sampler.stop()
        totals.append(time.perf_counter() - t)
        listed = run.report["validation"].get("rows", listed)
        for stage, (parent, children) in sampler.peaks.items():
            if stage in parent_peak:
                parent_peak[stage].append(parent / GIB)
                worker_peak[stage].append(children / GIB)

    print(
        f"\n{args.recommender} on {args.dataset}/{args.split}, k={args.k}, "
        f"median of {len(totals)} runs"
    )
    print("| stage | seconds | parent peak GiB | worker peak GiB |\n| --- | ---: | ---: | ---: |")
    overhead = 0.0
    for stage in STAGES:
        if not seconds[stage]:
            continue
        median = statistics.median(seconds[stage])
        if stage not in WORKER_STAGES:
            overhead += median
        worker = (
            f"{statistics.median(worker_peak[stage]):.2f}"
            if stage in ("spawn", *WORKER_STAGES) and worker_peak[stage]
            else ""
        )
        parent = f"{statistics.median(parent_peak[stage]):.2f}" if parent_peak[stage] else ""
        print(f"| {stage} | {median:.2f} | {parent} | {worker} |")
    if totals:
        print(f"| total | {statistics.median(totals):.2f} | | |")
    whole = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)
    print(
        f"\nharness overhead (all but fit + recommend): {overhead:.1f} s (target <= 60 s); "
        f"parent peak RSS {whole:.2f} GiB over all runs (target < 6 GiB)"
    )


if __name__ == "__main__":
    main()
