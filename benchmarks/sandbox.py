"""What the sandbox adds to a run: ``harness submit`` timed as a user types it, with and without.

    flock /tmp/harness-bench.lock python benchmarks/sandbox.py [--home /tmp/hb-sandbox] [--repeat 5]

Submits ``popular`` on ``synthetic-small`` (prepared once, not timed) ``--repeat`` times with
``--sandbox auto`` and with ``--sandbox none``, alternating so that load changes hit both alike, and
prints the median wall time of the whole command, the median of its ``spawn`` stage (worker
start-up: the sandbox set-up is in here) and of the bare start of the worker's interpreter
(``python -c pass`` in bwrap with the same mounts, and without). Target (issue 9): the sandbox
adds at most 0.3 s per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("auto", "none")


def _harness(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", "--home", str(home), *args],
        capture_output=True,
        text=True,
        check=True,
    )


def _bare_start(sandboxed: bool) -> float:
    """Seconds to start and leave the worker's interpreter, in the sandbox or not."""
    from harness.runner import process, sandbox

    env = sandbox.environment(process.allowed_cores(), process.THREAD_VARS)
    argv = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory() as job:
        if sandboxed:
            argv = sandbox.command(
                sandbox.find_bwrap(),
                Path(job),
                argv,
                env,
                hidden=[],
                tmpfs_bytes=sandbox.DEFAULT_TMPFS_BYTES,
            )
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, cwd=job)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "hb-sandbox")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    args.home.mkdir(parents=True, exist_ok=True)
    _harness(args.home, "data", "prepare", "synthetic-small")
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    spawn: dict[str, list[float]] = {m: [] for m in MODES}
    bare: dict[str, list[float]] = {m: [] for m in MODES}
    metrics: dict[str, set] = {m: set() for m in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            start = time.perf_counter()
            out = _harness(
                args.home,
                "submit",
                "popular",
                "--dataset",
                "synthetic-small",
                "--k",
                "10",
                "--sandbox",
                mode,
                "--json",
            )
            wall[mode].append(time.perf_counter() - start)
            run = json.loads(out.stdout)
            spawn[mode].append(run["report"]["parent_seconds"]["spawn"])
            metrics[mode].add(run["metrics"]["ndcg@10"])
            bare[mode].append(_bare_start(mode == "auto"))
    med = {
        name: {m: statistics.median(v[m]) for m in MODES}
        for name, v in (
            ("harness submit (whole command)", wall),
            ("spawn stage", spawn),
            ("worker interpreter start", bare),
        )
    }
    load = os.getloadavg()[0]
    print(f"median of {args.repeat}; load average {load:.1f} on {os.cpu_count()} cores")
    print(f"| {'what':<32} | {'sandbox auto s':>14} | {'sandbox none s':>14} | {'added s':>8} |")
    print(f"|{'-' * 34}|{'-' * 15}:|{'-' * 15}:|{'-' * 9}:|")
    for name, v in med.items():
        print(
            f"| {name:<32} | {v['auto']:>14.3f} | {v['none']:>14.3f} | {v['auto'] - v['none']:>+8.3f} |"
        )
    same = metrics["auto"] == metrics["none"] and len(metrics["auto"]) == 1
    print(
        f"ndcg@10 identical with and without: {same} ({sorted(metrics['auto'] | metrics['none'])})"
    )


if __name__ == "__main__":
    main()
