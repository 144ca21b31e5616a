"""Wall time, peak memory and NDCG@10 of ``harness submit NAME`` as a user types it, at scale.

    flock /tmp/harness-bench.lock python benchmarks/models_scale.py --home H \\
        [--dataset synthetic-kion] [--against popular,ease] [--timeout 1800] sasrec dssm two-stage

The home must hold the prepared dataset (``harness --home H data prepare synthetic-kion``). Each
NAME is submitted with default parameters in a fresh process (``harness --home H submit NAME
--dataset D --json``); the whole command is timed, and the resident memory of its process tree
(the harness parent, the sandbox and the model's worker) is sampled every 0.2 s. Each model's
per-user NDCG@10 is then compared with every run named in ``--against`` (submitted first when the
home has none) through ``harness compare`` (paired difference and bootstrap 95% interval).
Targets (issue 14): fit + recommend <= 15 min on 2 cores with default parameters, <= 6 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

GIB = 1 << 30


def harness(home: Path, *args: str) -> list[str]:
    """The ``harness`` command next to this interpreter (the venv's console script)."""
    return [str(Path(sys.executable).with_name("harness")), "--home", str(home), *args]


def tree_rss(proc) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except Exception:  # noqa: BLE001 - it may exit between listing and reading
            pass
    return total


def timed_submit(home: Path, name: str, dataset: str, timeout: float) -> dict:
    """Run ``harness submit NAME`` in a fresh process: wall seconds, peak RSS of the process
    tree, and the stored run (None if it failed)."""
    import psutil

    cmd = harness(home, "submit", name, "--dataset", dataset, "--timeout", str(timeout), "--json")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watched, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss(watched))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    done.set()
    thread.join()
    wall = time.perf_counter() - started
    run = json.loads(out) if proc.returncode == 0 else None
    if run is None:
        print(f"{name}: failed ({proc.returncode}): {err.strip().splitlines()[-1:]}", flush=True)
    return {"name": name, "wall": wall, "peak": peak[0] / GIB, "run": run, "stderr": err}


def latest_run(home: Path, name: str, dataset: str) -> str | None:
    out = subprocess.run(
        harness(home, "runs", "--dataset", dataset, "--json"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runs = [r for r in json.loads(out) if r["recommender"] == name and r["status"] == "ok"]
    return runs[0]["run_id"] if runs else None


def compare(home: Path, a: str, b: str) -> str:
    out = subprocess.run(
        harness(home, "compare", a, b, "--json"), capture_output=True, text=True, check=True
    ).stdout
    m = json.loads(out)["metrics"]["ndcg@10"]
    return f"{m['delta']:+.4f} [{m['ci'][0]:+.4f}, {m['ci'][1]:+.4f}], p {m['p_value']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+")
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--dataset", default="synthetic-kion")
    ap.add_argument("--against", default="popular")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    others = {}
    for other in [a for a in args.against.split(",") if a]:
        run_id = latest_run(args.home, other, args.dataset)
        if run_id is None:
            result = timed_submit(args.home, other, args.dataset, args.timeout)
            run_id = result["run"]["run_id"] if result["run"] else None
            print(f"{other}: {result['wall']:.0f} s, peak {result['peak']:.2f} GiB", flush=True)
        others[other] = run_id
    print(
        "| model | wall s | fit s | recommend s | peak GiB | NDCG@10 | "
        + " | ".join(f"vs {o}" for o in others)
        + " |\n|"
        + " --- |" * (6 + len(others)),
        flush=True,
    )
    for name in args.names:
        r = timed_submit(args.home, name, args.dataset, args.timeout)
        run = r["run"]
        if run is None:
            print(f"| {name} | {r['wall']:.0f} (failed) | | | {r['peak']:.2f} | | |", flush=True)
            continue
        cells = [compare(args.home, run["run_id"], o) if o else "" for o in others.values()]
        print(
            f"| {name} | {r['wall']:.0f} | {run['fit_seconds']:.0f} | "
            f"{run['recommend_seconds']:.0f} | {r['peak']:.2f} | "
            f"{run['metrics']['ndcg@10']:.4f} | " + " | ".join(cells) + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
