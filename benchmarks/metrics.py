"""Benchmark: the `harness score` command versus RecTools `calc_metrics` (and ranx, and the
in-memory `harness.metrics.evaluate`).

    flock /tmp/harness-bench.lock python benchmarks/metrics.py [--repeat 3] [--sizes 100k,1m,2m,10m]
        [--tools harness-cli,harness,rectools,ranx]

Generates seeded synthetic lists (N users x top-100 with rank and score, 20k items with Zipf
popularity, 1-30 relevant items per user, an items file for coverage) once into
benchmarks/out/metrics/; from 10M users the lists are a directory of parquet files of 1M users each.
Then times each tool in a fresh subprocess per repeat, on the same files: precision, recall, map,
ndcg, mrr and hit_rate at k = 1, 5, 10, 20, 50, 100 (36 metrics) plus coverage.

- harness-cli: `harness score --recs --truth --catalog --k ... --json` as a user types it: whole
  process wall time (start-up, reading, validation, scoring, printing) and peak RSS of the
  process tree (sampled every 20 ms, and the kernel's peak of the largest process).
- harness, rectools, ranx: a worker that reads the files and calls the library; "library call"
  is the call alone, "whole process" the worker measured from outside like the command.
  RecTools 0.19 pins numpy<2 and ranx pulls numba, so each runs in its own venv
  (benchmarks/.venv-rectools, benchmarks/.venv-ranx) that this script creates with pip. ranx runs
  at 100k only (its time includes converting frames; the numba warm-up is timed apart); the
  in-memory tools stop at 1M.

Prints medians, ratios to harness-cli (whole process against whole process), and which shared
metrics disagree.

This file is also the worker: `--worker TOOL` runs one tool once and prints one JSON line. The
worker part imports only the standard library at module level, so the peers' venvs can run it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "metrics"
KS = (1, 5, 10, 20, 50, 100)
NAMES = ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")
N_ITEMS, LIST_LEN, ZIPF_S = 20_000, 100, 1.0
SIZES = {"100k": 100_000, "1m": 1_000_000, "2m": 2_000_000, "10m": 10_000_000}
PARTITION_FROM, PART_USERS = 10_000_000, 1_000_000
VENVS = {
    "rectools": ["rectools==0.19.0", "pyarrow<18", "pandas"],  # pyarrow 18+ needs numpy 2
    "ranx": ["ranx==0.3.21", "pyarrow", "pandas"],
}


# ---------------------------------------------------------------- data (harness venv only)


def _distinct_zipf(rng, cdf, n_rows: int, width: int, draws: int):
    """`width` distinct Zipf-popular items per row, in random order (first `width` distinct of
    `draws` weighted draws; dense and vectorised, no per-user loop)."""
    import numpy as np

    a = np.sort(np.searchsorted(cdf, rng.random((n_rows, draws)), side="right").astype(np.int32), 1)
    dup = np.zeros_like(a, dtype=bool)
    dup[:, 1:] = a[:, 1:] == a[:, :-1]
    if int((~dup).sum(1).min()) < width:
        raise RuntimeError("too few distinct draws; raise `draws`")
    key = rng.random(a.shape, dtype=np.float32)
    key[dup] = 2.0  # duplicates sort last
    order = np.argpartition(key, width - 1, axis=1)[:, :width]
    order = np.take_along_axis(order, np.argsort(np.take_along_axis(key, order, 1), 1), 1)
    return np.take_along_axis(a, order, 1)


def generate(n_users: int, seed: int, directory: Path) -> None:
    """recs.parquet (user_id, item_id, rank: int32; score: float32, higher first, the same order as
    rank) and truth.parquet (user_id, item_id). From 10M users on, recs is a directory of parquet
    files of 1M users each (a partitioned data set, as Spark or DuckDB write them), written as it
    is generated so that the generator never holds more than one part."""
    import numpy as np
    import polars as pl

    directory.mkdir(parents=True, exist_ok=True)
    if n_users >= PARTITION_FROM and n_users % PART_USERS == 0:
        return _tile(n_users, seed, directory)
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, N_ITEMS + 1) ** ZIPF_S
    cdf = np.cumsum(p) / p.sum()
    cdf[-1] = 1.0
    perm = rng.permutation(N_ITEMS).astype(np.int32)  # popularity is not ordered by id
    partitioned = n_users >= PARTITION_FROM
    if partitioned:
        (directory / "recs").mkdir(exist_ok=True)
    recs, truth, part = [], [], 0
    chunk = 50_000
    score = np.arange(LIST_LEN, 0, -1, dtype=np.float32) / LIST_LEN

    def flush() -> None:
        nonlocal recs, part
        if partitioned:
            pl.concat(recs).write_parquet(directory / "recs" / f"part-{part:05d}.parquet")
            recs, part = [], part + 1

    for start in range(0, n_users, chunk):
        n = min(chunk, n_users - start)
        users = np.arange(start, start + n, dtype=np.int32)
        lists = perm[_distinct_zipf(rng, cdf, n, LIST_LEN, 300)]
        recs.append(
            pl.DataFrame(
                {
                    "user_id": np.repeat(users, LIST_LEN),
                    "item_id": lists.ravel(),
                    "rank": np.tile(np.arange(1, LIST_LEN + 1, dtype=np.int32), n),
                    "score": np.tile(score, n),
                }
            )
        )
        rel = perm[_distinct_zipf(rng, cdf, n, 30, 120)]
        n_rel = rng.integers(1, 31, n)
        keep = np.arange(30)[None, :] < n_rel[:, None]
        truth.append(
            pl.DataFrame(
                {
                    "user_id": np.repeat(users, 30)[keep.ravel()],
                    "item_id": rel.ravel()[keep.ravel()],
                }
            )
        )
        if partitioned and (start + n) % PART_USERS == 0:
            flush()
    if partitioned:
        if recs:
            flush()
    else:
        pl.concat(recs).write_parquet(directory / "recs.parquet")
    pl.concat(truth).write_parquet(directory / "truth.parquet")
    pl.DataFrame({"item_id": np.arange(N_ITEMS, dtype=np.int32)}).write_parquet(
        directory / "items.parquet"
    )
    (directory / "meta.json").write_text(
        json.dumps({"users": n_users, "seed": seed, "items": N_ITEMS, "zipf_s": ZIPF_S})
    )


def _tile(n_users: int, seed: int, directory: Path) -> None:
    """10M users and more: the 1M data set repeated with disjoint user ids (user + i * 1M), one
    part file per copy (generating 10M users afresh takes about half an hour here)."""
    import polars as pl

    one = OUT / f"1m-seed{seed}"
    if not (one / "meta.json").exists():
        generate(PART_USERS, seed, one)
    (directory / "recs").mkdir(exist_ok=True)
    recs = pl.read_parquet(one / "recs.parquet")
    truth = pl.read_parquet(one / "truth.parquet")
    for part in range(n_users // PART_USERS):
        offset = pl.col("user_id") + part * PART_USERS
        recs.with_columns(offset).write_parquet(directory / "recs" / f"part-{part:05d}.parquet")
    del recs
    pl.concat(
        [
            truth.with_columns(pl.col("user_id") + p * PART_USERS)
            for p in range(n_users // PART_USERS)
        ]
    ).write_parquet(directory / "truth.parquet")
    pl.read_parquet(one / "items.parquet").write_parquet(directory / "items.parquet")
    (directory / "meta.json").write_text(
        json.dumps(
            {
                "users": n_users,
                "seed": seed,
                "items": N_ITEMS,
                "zipf_s": ZIPF_S,
                "tiled_from": str(one),
            }
        )
    )


# ---------------------------------------------------------------- workers (any venv)


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def work_harness(data: Path) -> dict:
    import polars as pl

    from harness.metrics import evaluate

    recs = pl.read_parquet(data / "recs.parquet")
    truth = pl.read_parquet(data / "truth.parquet")
    catalog = pl.DataFrame({"item_id": pl.int_range(0, N_ITEMS, dtype=pl.Int32, eager=True)})
    no_cold = pl.Series([], dtype=pl.Int32)
    t = time.perf_counter()
    e = evaluate(recs, truth, ks=KS, train=catalog, cold_users=no_cold)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "metrics": e.metrics["all"]}


def work_rectools(data: Path) -> dict:
    import pandas as pd
    from rectools.metrics import (
        MAP,
        MRR,
        NDCG,
        CatalogCoverage,
        HitRate,
        Precision,
        Recall,
        calc_metrics,
    )

    reco = pd.read_parquet(data / "recs.parquet")
    truth = pd.read_parquet(data / "truth.parquet")
    catalog = list(range(N_ITEMS))
    classes = {
        "precision": Precision,
        "recall": Recall,
        "map": MAP,
        "ndcg": NDCG,
        "mrr": MRR,
        "hit_rate": HitRate,
    }
    metrics = {f"{name}@{k}": cls(k=k) for name, cls in classes.items() for k in KS}
    metrics.update({f"coverage@{k}": CatalogCoverage(k=k, normalize=True) for k in KS})
    t = time.perf_counter()
    values = calc_metrics(metrics, reco=reco, interactions=truth, catalog=catalog)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "metrics": {k: float(v) for k, v in values.items()}}


def _ranx_frames(recs, truth):
    """pandas frames -> ranx Qrels and Run (ids as strings; score = list length - rank + 1)."""
    from ranx import Qrels, Run

    as_text = lambda s: s.astype(str).astype(object)  # noqa: E731  (ranx asserts dtype object)
    truth = truth.assign(
        user_id=as_text(truth["user_id"]), item_id=as_text(truth["item_id"]), rel=1
    )
    recs = recs.assign(
        user_id=as_text(recs["user_id"]),
        item_id=as_text(recs["item_id"]),
        score=(LIST_LEN + 1 - recs["rank"]).astype(float),
    )
    qrels = Qrels.from_df(truth, q_id_col="user_id", doc_id_col="item_id", score_col="rel")
    run = Run.from_df(recs, q_id_col="user_id", doc_id_col="item_id", score_col="score")
    return qrels, run


def work_ranx(data: Path) -> dict:
    import pandas as pd
    from ranx import evaluate

    metrics = [f"{name}@{k}" for name in NAMES for k in KS]
    t = time.perf_counter()  # numba compiles every metric on first use: warm up on a tiny case
    tiny_q, tiny_r = _ranx_frames(
        pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 3], "rank": [1, 2, 1]}),
        pd.DataFrame({"user_id": [1, 2], "item_id": [2, 3]}),
    )
    evaluate(tiny_q, tiny_r, metrics)
    warmup = time.perf_counter() - t
    reco = pd.read_parquet(data / "recs.parquet")
    truth = pd.read_parquet(data / "truth.parquet")
    t = time.perf_counter()
    qrels, run = _ranx_frames(reco, truth)
    convert = time.perf_counter() - t
    values = evaluate(qrels, run, metrics)
    seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "convert_seconds": convert,
        "warmup_seconds": warmup,
        "metrics": {k: float(v) for k, v in values.items()},
    }


WORKERS = {"harness": work_harness, "rectools": work_rectools, "ranx": work_ranx}
TOOLS = ("harness-cli", *WORKERS)


def worker(tool: str, data: Path) -> None:
    t = time.perf_counter()
    result = WORKERS[tool](data)
    result.update(process_seconds=time.perf_counter() - t, peak_gib=_peak_gib())
    print(json.dumps(result))


# ---------------------------------------------------------------- driver (harness venv)


def _venv_python(tool: str) -> str:
    if tool in ("harness", "harness-cli"):
        return sys.executable
    venv = HERE / f".venv-{tool}"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ({', '.join(VENVS[tool])})", flush=True)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *VENVS[tool]], check=True)
    return str(python)


def _tree_peak(cmd: list[str], env: dict) -> tuple[float, float, str, str]:
    """Run ``cmd``; wall seconds of the whole process, peak resident GiB of its process tree
    (sampled every 20 ms, and the kernel's own peak of the command, from its own rusage), stdout,
    stderr. The child is reaped with ``os.wait4``: its rusage is that command's alone, where
    ``RUSAGE_CHILDREN`` is the largest of every child this driver ever waited for (the data
    generator's 2 GiB, when the data was written in the same run)."""
    import psutil

    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    out: list[str] = []
    err: list[str] = []
    threading = __import__("threading")
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read())),
        threading.Thread(target=lambda: err.append(proc.stderr.read())),
    ]
    for reader in readers:
        reader.start()
    root = psutil.Process(proc.pid)
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    own = usage.ru_maxrss * 1024
    return seconds, max(peak, own) / 2**30, "".join(out), "".join(err)


def cli_command(data: Path) -> list[str]:
    """The command as a user types it (``--catalog`` for coverage)."""
    recs = data / "recs" if (data / "recs").is_dir() else data / "recs.parquet"
    return [
        "harness",
        "score",
        "--recs",
        str(recs),
        "--truth",
        str(data / "truth.parquet"),
        "--catalog",
        str(data / "items.parquet"),
        *[a for k in KS for a in ("--k", str(k))],
        "--json",
    ]


def run_once(tool: str, data: Path) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    if tool == "harness-cli":
        cmd = cli_command(data)
        cmd[0] = str(Path(sys.executable).parent / "harness")
        seconds, peak, out, err = _tree_peak(cmd, env)
        if not out.strip():
            raise RuntimeError(f"harness score failed:\n{err[-3000:]}")
        return {
            "seconds": seconds,
            "process_seconds": seconds,
            "peak_gib": peak,
            "metrics": json.loads(out)["metrics"],
        }
    cmd = [_venv_python(tool), __file__, "--worker", tool, "--data", str(data)]
    seconds, peak, out, err = _tree_peak(cmd, env)
    if not out.strip():
        raise RuntimeError(f"{tool} failed:\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(process_seconds=seconds, peak_gib=max(peak, result["peak_gib"]))
    return result


def compare(ours: dict, theirs: dict, tool: str) -> list[str]:
    """Shared metric ids whose values differ by more than 1e-6 (relative)."""
    lines = []
    for name, value in theirs.items():
        if name in ours and abs(ours[name] - value) > 1e-6 * max(1.0, abs(ours[name])):
            lines.append(f"{name}: harness {ours[name]:.6f} {tool} {value:.6f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=WORKERS)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and size (medians)")
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated: 100k, 1m, 2m, 10m")
    parser.add_argument(
        "--rectools-1m-repeat",
        type=int,
        default=1,
        help="RecTools runs at 1m (about 2 min and 17 GiB each)",
    )
    parser.add_argument("--tools", default="harness-cli,harness,rectools,ranx")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generate", choices=SIZES, help="only write the data of this size")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.data)
    if args.generate:
        return generate(SIZES[args.generate], args.seed, OUT / f"{args.generate}-seed{args.seed}")

    tools = args.tools.split(",")
    rows, notes = [], []
    for size in args.sizes.split(","):
        data = OUT / f"{size}-seed{args.seed}"
        if not (data / "meta.json").exists():
            # in a child process: a driver that held the generated GiBs would pass them, as
            # resident copy-on-write pages, to every command it forks, and the kernel's peak
            # RSS of those commands would report them (3.67 GiB instead of 0.8 at 2M)
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, __file__, "--generate", size, "--seed", str(args.seed)], check=True
            )
            print(f"generated {size} in {time.perf_counter() - t:.1f} s", flush=True)
        results = {}
        for tool in tools:
            if tool == "ranx" and size != "100k":
                continue  # ranx would need about 47 GiB at 1M
            if tool in ("rectools", "harness") and size not in ("100k", "1m"):
                continue  # in-memory tools: 2M and beyond are for the bounded-memory command
            repeat = args.rectools_1m_repeat if (tool, size) == ("rectools", "1m") else args.repeat
            runs = []
            for i in range(repeat):
                runs.append(run_once(tool, data))
                print(
                    f"{size} {tool} run {i + 1}: process {runs[-1]['process_seconds']:.2f} s, "
                    f"call {runs[-1]['seconds']:.2f} s, peak {runs[-1]['peak_gib']:.2f} GiB",
                    flush=True,
                )
            results[tool] = runs
        base = results.get("harness-cli") or results.get("harness")
        for tool, runs in results.items():
            row = {
                "size": size,
                "tool": tool,
                "runs": len(runs),
                "process": statistics.median(r["process_seconds"] for r in runs),
                "call": statistics.median(r["seconds"] for r in runs),
                "peak_gib": statistics.median(r["peak_gib"] for r in runs),
            }
            if "warmup_seconds" in runs[0]:
                row["extra"] = (
                    f"convert {statistics.median(r['convert_seconds'] for r in runs):.1f} s "
                    f"(included), numba warm-up {statistics.median(r['warmup_seconds'] for r in runs):.1f} s (not included)"
                )
            if base:
                bmed = statistics.median(r["process_seconds"] for r in base)
                bpeak = statistics.median(r["peak_gib"] for r in base)
                row["time_ratio"], row["rss_ratio"] = row["process"] / bmed, row["peak_gib"] / bpeak
                if runs is not base:
                    diff = compare(base[0]["metrics"], runs[0]["metrics"], tool)
                    shared = len(set(base[0]["metrics"]) & set(runs[0]["metrics"]))
                    notes.append(
                        f"{size} {tool}: {shared} shared metrics, {len(diff)} differ"
                        + "".join(f"\n    {d}" for d in diff)
                    )
            rows.append(row)
    print()
    print("harness-cli: `" + " ".join(cli_command(Path("DATA"))) + "` (whole process)")
    print(
        "| size | tool | runs | whole process s (median) | library call s | peak RSS GiB (tree) "
        "| process time / harness-cli | RSS / harness-cli | note |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        call = "-" if r["tool"] == "harness-cli" else f"{r['call']:.2f}"
        print(
            f"| {r['size']} | {r['tool']} | {r['runs']} | {r['process']:.2f} | {call} | "
            f"{r['peak_gib']:.2f} | {r.get('time_ratio', float('nan')):.1f}x | "
            f"{r.get('rss_ratio', float('nan')):.1f}x | {r.get('extra', '')} |"
        )
    print()
    for n in notes:
        print(n)


if __name__ == "__main__":
    main()
