"""Time of the test suite as the README runs it, and the CPU it uses, whole machine.

    flock /tmp/harness-bench.lock python benchmarks/suite.py [--repeat 3] [--fresh]
        [--checkout DIR ...] [--files]

Each run is ``python -m pytest -n 2 -q -p no:cacheprovider`` in DIR (default: this checkout), in a
fresh process, timed from start to exit. The CPU column is the whole machine's busy time over the
run (user, nice, system, irq and softirq of ``/proc/stat``), because the resource usage of the
pytest process misses most of it: Spark's JVM and the sandboxed workers are not its waited-for
children. So run it on an otherwise idle machine; ``steal`` shows time the hypervisor gave to
others. Several ``--checkout`` directories (``git worktree add /tmp/wt-base COMMIT``) are run in
turn within each repeat, so that a host whose speed drifts compares them in the same minutes. A
checkout's test processes import its own ``harness`` (the current directory comes first on their
path); the workers they start import the installed one, so compare checkouts whose differences
the workers do not run.

``--fresh`` deletes the bytecode and numba caches of the checkouts (their virtual environments
excepted) and of the installed ``harness`` package before each run: a fresh clone, as CI runs it.
``--files`` runs each test file alone instead (one pytest process per file, so each pays pytest's
start, about 2 CPU-s) and lists them by CPU.

Target (issue 13): the whole suite <= 60 s of pytest on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHES = ("*.pyc", "*.nbi", "*.nbc")


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) seconds of all CPUs since boot."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(
            int, fh.readline().split()[1:9]
        )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def clear_caches(dirs: list[Path]) -> None:
    for d in dirs:
        for pattern in CACHES:
            for path in d.rglob(pattern):
                if not any(part.startswith((".venv", ".ci-venv")) for part in path.parts):
                    path.unlink(missing_ok=True)


def run(checkout: Path, args: list[str]) -> dict:
    cpu0, steal0 = machine_cpu()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    cpu1, steal1 = machine_cpu()
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    passed = re.search(r"(\d+) passed", tail)
    return {
        "wall": wall,
        "cpu": cpu1 - cpu0,
        "steal": steal1 - steal0,
        "tests": int(passed.group(1)) if passed else 0,
        "ok": proc.returncode == 0,
        "tail": tail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, action="append", default=[])
    parser.add_argument("--fresh", action="store_true", help="clear bytecode and numba caches")
    parser.add_argument("--files", action="store_true", help="each test file alone, by CPU")
    opts = parser.parse_args()
    checkouts = [c.resolve() for c in opts.checkout] or [ROOT]
    if opts.files:
        rows = []
        for checkout in checkouts:
            files = sorted(checkout.glob("tests/test_*.py")) + sorted(
                checkout.glob("submissions/*/tests/test_*.py")
            )
            for f in files:
                r = run(checkout, [str(f.relative_to(checkout))])
                rows.append((r["cpu"], r["wall"], f"{checkout.name}/{f.relative_to(checkout)}"))
        print(f"{'CPU-s':>7} {'wall s':>7}  file")
        for cpu, wall, name in sorted(rows, reverse=True):
            print(f"{cpu:7.1f} {wall:7.1f}  {name}")
        print(f"{sum(r[0] for r in rows):7.1f} {sum(r[1] for r in rows):7.1f}  total")
        return
    import harness

    installed = Path(harness.__file__).resolve().parent  # the package only, never site-packages
    results: dict[Path, list[dict]] = {c: [] for c in checkouts}
    for i in range(opts.repeat):
        for checkout in checkouts:
            if opts.fresh:
                clear_caches([checkout, installed])
            r = run(checkout, ["-n", "2"])
            results[checkout].append(r)
            print(
                f"# {checkout.name} run {i + 1}: {r['wall']:.1f} s, {r['cpu']:.1f} CPU-s, "
                f"steal {r['steal']:.1f} s: {r['tail']}",
                flush=True,
            )
    print("\n| checkout | tests | wall s (median) | runs | CPU-s (median) | steal s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for checkout, rs in results.items():
        walls = ", ".join(f"{r['wall']:.0f}" for r in rs)
        print(
            f"| {checkout.name} | {rs[-1]['tests']} | {statistics.median(r['wall'] for r in rs):.1f} "
            f"| {walls} | {statistics.median(r['cpu'] for r in rs):.0f} "
            f"| {max(r['steal'] for r in rs):.1f} |"
            + ("" if all(r["ok"] for r in rs) else " FAILED")
        )


if __name__ == "__main__":
    main()
