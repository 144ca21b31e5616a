"""Time and peak memory of ``harness submit`` at full scale: the whole command, and its stages.

    flock /tmp/harness-bench.lock python benchmarks/submit.py --home /tmp/hb-S --repeat 3
        [--dataset synthetic-kion] [--split users-last1] [--recommender popular] [--k 100]
        [--stages]

The shipped ``synthetic-kion`` split (temporal, last 7 days) asks for 114k users; the issue's scale
is every user (about a million), so the benchmark adds a split ``users-last1`` (each user's last
interaction is the truth: 957k test users, 96M listed items at k=100) through a registry file in
the home, and prepares it once (not timed).

``--warm`` runs (default 1) go first and are not counted: the first run after an install or an
upgrade compiles the numba kernels into the cache (several CPU-seconds, once).

Each run is the command as a user types it, in a fresh process:
``harness --home H --datasets REG submit popular --dataset D --split S --k 100 --json`` (sandboxed,
as by default), timed from start to exit. A thread samples every 10 ms the resident memory of
the ``harness`` process itself (the parent: reads, validates, scores, stores, builds the board)
and of its descendants (bwrap and the worker that runs the model), and the parent's CPU time.
The stage seconds come from the stored run (``report.parent_seconds``); "outside the model" is
the whole command less the fit and recommend stages (what the worker spends in the model's own
code); "rest" is the whole command less every timed stage: interpreter start and imports, the
store stage and the leaderboard the command prints. Medians over ``--repeat`` runs.

``--stages`` adds ``--repeat`` submissions through the library call (``harness.runner.submit``
in this process) with the parent's peak RSS per stage (the stage's own peak, sampled every
10 ms), to see where memory goes.

Target (issue 12): everything outside the model <= 10 s, the parent <= 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

STAGES = ("load", "handoff", "spawn", "fit", "recommend", "score", "store")
WORKER_STAGES = ("fit", "recommend")
EXTRA_SPLITS = {"users-last1": 'protocol = "leave-last"\nn = 1\n'}
GIB = 1 << 30


class CommandSampler:
    """Peak RSS of a process and, separately, of its descendants, and its CPU seconds (user +
    system), sampled every ``every`` seconds in a thread until :meth:`stop`."""

    def __init__(self, pid: int, every: float = 0.01) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.parent = self.children = 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        while not self._stop.wait(self.every):
            try:
                self.parent = max(self.parent, self.proc.memory_info().rss)
                times = self.proc.cpu_times()
                self.cpu = times.user + times.system
                children = self.proc.children(recursive=True)
            except psutil.Error:  # the command has exited
                continue
            total = 0
            for child in children:
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # it may exit between listing and reading
                    pass
            self.children = max(self.children, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_command(args, registry: Path | None) -> dict:
    """One ``harness submit`` as a user types it; seconds, peaks and the stored run's stages."""
    harness = str(Path(sys.executable).with_name("harness"))
    cmd = [harness, "--home", str(args.home)]
    if registry is not None:
        cmd += ["--datasets", str(registry)]
    cmd += [
        "submit",
        args.recommender,
        "--dataset",
        args.dataset,
        "--split",
        args.split,
        "--k",
        str(args.k),
        "--json",
    ]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = CommandSampler(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    sampler.stop()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    run = json.loads(out)
    stages = dict(run["report"]["parent_seconds"])
    return {
        "seconds": seconds,
        "stages": stages,
        "outside": seconds - stages.get("fit", 0.0) - stages.get("recommend", 0.0),
        "rest": seconds - sum(stages.values()),
        "parent_gib": sampler.parent / GIB,
        "worker_gib": sampler.children / GIB,
        "parent_cpu": sampler.cpu,
        "rows": run["report"]["validation"].get("rows"),
        "command": " ".join(cmd[:1] + ["--home", "H"] + cmd[3:]),
    }


def command_table(args, registry: Path | None) -> None:
    for i in range(args.warm):  # compiled kernels cached on disk, files in the page cache
        r = run_command(args, registry)
        print(f"warm-up run {i + 1} (not counted): {r['seconds']:.1f} s", flush=True)
    runs = []
    for i in range(args.repeat):
        runs.append(run_command(args, registry))
        r = runs[-1]
        print(
            f"command run {i + 1}: {r['seconds']:.1f} s, outside the model {r['outside']:.1f} s, "
            f"parent {r['parent_gib']:.2f} GiB, {r['parent_cpu']:.1f} parent CPU-s "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    def med(values) -> float:
        return statistics.median(values)

    print(f"\n`{runs[0]['command']}`: {runs[0]['rows']:,} list rows, median of {len(runs)} runs")
    print("| stage | seconds |\n| --- | ---: |")
    for stage in STAGES:
        if stage in runs[0]["stages"]:
            print(f"| {stage} | {med(r['stages'].get(stage, 0.0) for r in runs):.2f} |")
    print(f"| rest (start, imports, store, board) | {med(r['rest'] for r in runs):.2f} |")
    print(f"| **whole command** | {med(r['seconds'] for r in runs):.2f} |")
    print(
        f"| **outside the model** (all but fit, recommend) | {med(r['outside'] for r in runs):.2f} |"
    )
    print(
        f"\nparent (the harness process) peak RSS {med(r['parent_gib'] for r in runs):.2f} GiB "
        f"(max {max(r['parent_gib'] for r in runs):.2f}), CPU {med(r['parent_cpu'] for r in runs):.1f} s; "
        f"worker tree peak {med(r['worker_gib'] for r in runs):.2f} GiB; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
        "Target: outside the model <= 10 s, parent <= 2 GiB."
    )


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
    ap.add_argument(
        "--warm",
        type=int,
        default=1,
        help="untimed runs first (the first run after an install compiles numba's kernels)",
    )
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument(
        "--stages",
        action="store_true",
        help="also submit through the library call, with the parent's peak memory per stage",
    )
    args = ap.parse_args()

    from harness.datasets import prepare

    args.home.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    registry = registry_with_split(args.home, args.dataset, args.split)
    meta = prepare(args.dataset, home=args.home, split=args.split, registry_file=registry)
    print(
        f"{args.dataset}/{args.split} ready in {time.perf_counter() - t:.1f} s: "
        f"{meta['info']['train_rows']:,} train rows, {meta['info']['test_users']:,} test users"
    )

    command_table(args, registry)
    if args.stages:
        stage_table(args)


def stage_table(args) -> None:
    from harness.runner import submit

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
        f"\nlibrary call: {args.recommender} on {args.dataset}/{args.split}, k={args.k}, "
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
        f"\nlibrary call, all but fit + recommend: {overhead:.1f} s; "
        f"this process's peak RSS {whole:.2f} GiB over all runs"
    )


if __name__ == "__main__":
    main()
