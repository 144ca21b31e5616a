"""The submit pipeline: run a recommender on a prepared split in a worker process, validate and
score its lists, store the run.

Stages: load (split from the store), handoff (train/users/items/test users as parquet in a private
temporary directory), spawn (worker start-up and reading those files), fit and recommend (worker process, under the time and memory limits),
validate, score, store. The database is opened only briefly (create the run, then finish it in one
transaction), never while the worker runs, so the leaderboard stays readable during training.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from harness import __version__
from harness.api import Columns
from harness.config import runs_dir
from harness.errors import HarnessError, PluginError, RunError, ValidationError
from harness.store import runs as store

Progress = Callable[[str, str, dict], None]  # (stage, "start" | "done", details)
STDERR_TAIL_CHARS = 4000
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "POLARS_MAX_THREADS",
               "RAYON_NUM_THREADS")


def new_run_id() -> str:
    """Sortable and unique: start time plus random suffix."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def allowed_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _environment() -> dict[str, str]:
    return {"python": platform.python_version(), "platform": platform.platform()}


class _Stages:
    """Calls the progress callback and records the parent's seconds per stage."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._open: dict[str, float] = {}

    def start(self, stage: str, **details) -> None:
        self._open[stage] = time.perf_counter()
        if self.progress:
            self.progress(stage, "start", details)

    def done(self, stage: str, **details) -> None:
        self.seconds[stage] = time.perf_counter() - self._open.pop(stage, time.perf_counter())
        if self.progress:
            self.progress(stage, "done", {"seconds": self.seconds[stage], **details})


def submit(home: Path, name: str, *, dataset: str, split: str | None = None,
           params: dict[str, str] | None = None, k: int = 100, timeout: float | None = None,
           memory: int | None = None, seed: int = 0, progress: Progress | None = None) -> dict:
    """Run recommender ``name`` on the prepared split and store the run; return the stored run.

    Raises RunError (after storing a failed run) when the worker crashes, times out, runs out of
    memory or returns lists that break the contract. KeyboardInterrupt marks the run aborted.
    """
    from harness import plugins
    from harness.store.splits import load_split

    if k < 1:
        raise HarnessError(f"--k must be at least 1, got {k}")
    params = dict(params or {})
    info = plugins.get(name)
    if info.error:
        raise PluginError(f"recommender {name!r} cannot be loaded: {info.error}")
    # Unknown or ill-typed parameters are input errors: report them before any run is stored.
    plugins.build(name, params)
    stages = _Stages(progress)
    stages.start("load")
    prepared = load_split(home, dataset, split, parts=("train", "test_users", "users", "items"))
    stages.done("load")
    run_id = new_run_id()
    store.create_run(home, {
        "run_id": run_id, "recommender": name, "parameters": params, "seed": seed, "k": k,
        "dataset": prepared.dataset, "split": prepared.split, "fingerprint": prepared.fingerprint,
        "harness_version": __version__, "plugin_distribution": info.distribution,
        "plugin_version": info.version, "baseline": info.value.startswith("baselines."),
        "started_at": datetime.now(), "external": False, **_environment(),
    })
    recs_file = runs_dir(home) / f"{run_id}.parquet"
    tmp_recs = recs_file.with_suffix(".parquet.tmp")  # renamed into place by the store stage
    try:
        with tempfile.TemporaryDirectory(prefix="harness-run-") as tmp:
            workdir = Path(tmp)
            stages.start("handoff")
            _write_job(workdir, prepared, name=name, params=params, k=k, seed=seed)
            test_users = prepared.test_users.get_column(Columns.USER)
            cold = prepared.test_users.filter(pl.col("cold")).get_column(Columns.USER)
            train_pairs = prepared.train.select(Columns.USER, Columns.ITEM)
            categories = _categories(prepared.items)
            del prepared
            stages.done("handoff")
            result = _run_worker(home, run_id, workdir, timeout=timeout, memory=memory, stages=stages)
            stages.start("validate")
            raw = pl.read_parquet(workdir / "recs.parquet")
        try:
            recs, report = _validate(raw, source=f"{name} (run {run_id})", k=k, users=test_users)
        except ValidationError as exc:
            store.mark_run(home, run_id, "failed", error=f"invalid recommendations: {exc}", **result)
            raise RunError(f"run {run_id} failed: invalid recommendations: {exc}") from exc
        del raw
        # The normalised lists are written now so that scoring runs without their scores in
        # memory (0.8 GiB at 1M users x 100).
        recs.write_parquet(tmp_recs, compression="zstd")
        recs = recs.drop(Columns.SCORE, strict=False)
        stages.done("validate", **{k_: v for k_, v in report.items() if isinstance(v, (int, float))})
        stages.start("score")
        from harness.store.splits import load_split as _load

        truth = _load(home, dataset, split, parts=("truth",)).truth
        evaluation = _evaluate(recs, truth, k=k, train=train_pairs, cold_users=cold,
                               item_categories=categories)
        del truth, train_pairs, recs
        stages.done("score")
        stages.start("store")
        tmp_recs.replace(recs_file)
        store.finish_run(home, run_id, metrics=evaluation.metrics, per_user=evaluation.per_user, fields={
            **result, "ended_at": datetime.now(), "recs_path": str(recs_file.relative_to(home)),
            "report": {"validation": report, "notices": evaluation.notices,
                       "parent_seconds": stages.seconds},
        })
        stages.done("store")
    except BaseException as exc:
        tmp_recs.unlink(missing_ok=True)
        recs_file.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            store.mark_run(home, run_id, "aborted", error="interrupted (Ctrl-C)")
        elif not isinstance(exc, RunError):  # a RunError's run is already marked failed
            store.mark_run(home, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    run = store.get_run(home, run_id)
    run["parent_seconds"] = stages.seconds
    return run


def _write_job(workdir: Path, prepared, *, name: str, params: dict, k: int, seed: int) -> None:
    prepared.train.write_parquet(workdir / "train.parquet", compression="lz4")
    prepared.test_users.select(Columns.USER).write_parquet(workdir / "test_users.parquet")
    # Feature rows only for what the model may know at the cutoff: items of the training part (a
    # catalogue row of a film first rated after the cutoff would leak its existence) and the users
    # of train or of the test list (cold users are asked for, so their features are fair game).
    if prepared.users is not None:
        known = pl.concat([prepared.train.select(Columns.USER).unique(),
                           prepared.test_users.select(Columns.USER)]).unique()
        prepared.users.join(known, on=Columns.USER, how="semi").write_parquet(workdir / "users.parquet")
    if prepared.items is not None:
        known = prepared.train.select(Columns.ITEM).unique()
        prepared.items.join(known, on=Columns.ITEM, how="semi").write_parquet(workdir / "items.parquet")
    cutoff = prepared.cutoff.isoformat() if prepared.cutoff is not None else None
    (workdir / "job.json").write_text(json.dumps({
        "name": name, "params": params, "k": k, "seed": seed, "cutoff": cutoff,
        "n_threads": allowed_cores()}))


def _categories(items: pl.DataFrame | None) -> pl.DataFrame | None:
    if items is None or Columns.CATEGORIES not in items.columns:
        return None
    return items.select(Columns.ITEM, Columns.CATEGORIES)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    n = str(allowed_cores())
    for var in THREAD_VARS:
        env[var] = n
    return env


POLL_SECONDS = 0.2


def _tree_rss(proc: subprocess.Popen) -> int:
    """Resident memory of the worker and its children, in bytes (0 once it has exited)."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def _wait(proc: subprocess.Popen, timeout: float | None, memory: int | None) -> str | None:
    """Wait for the worker; return "timeout" or "memory" when a limit ended it.

    Memory is the resident set of the worker's process tree, polled. (An address-space limit,
    RLIMIT_AS, is no good here: polars reserves so much virtual memory for its thread pools that
    it aborts or deadlocks under a 1 GiB limit before the model even starts.)
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = POLL_SECONDS if memory is not None else 1.0
        if deadline is not None:
            step = min(step, max(0.0, deadline - time.monotonic()))
        try:
            proc.wait(timeout=step)
            return None
        except subprocess.TimeoutExpired:
            pass
        if memory is not None and _tree_rss(proc) > memory:
            _kill(proc)
            return "memory"
        if deadline is not None and time.monotonic() >= deadline:
            _kill(proc)
            return "timeout"


def _tail(path: Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - STDERR_TAIL_CHARS))
        return fh.read().decode("utf-8", "replace")


def _run_worker(home: Path, run_id: str, workdir: Path, *, timeout: float | None,
                memory: int | None, stages: _Stages) -> dict[str, Any]:
    """Run the worker; return its timings or store a failed run and raise RunError."""
    stderr_path = workdir / "stderr.txt"
    stages.start("spawn")  # worker start-up, imports and reading the handed-over files
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.runner.worker", str(workdir)],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=_worker_env(),
            cwd=workdir, start_new_session=True,
        )
        reader = threading.Thread(target=_follow, args=(proc, stages), daemon=True)
        reader.start()
        try:
            limit = _wait(proc, timeout, memory)
        except BaseException:
            _kill(proc)
            raise
        reader.join(timeout=5)
    if proc.returncode == 0 and (workdir / "result.json").exists():
        return json.loads((workdir / "result.json").read_text())
    error = json.loads((workdir / "error.json").read_text()) if (workdir / "error.json").exists() else {}
    if limit == "timeout":
        reason = f"timeout: the worker ran past --timeout {timeout:g} s and was killed"
    elif limit == "memory":
        reason = f"out of memory: the worker's resident memory exceeded --memory {_size(memory)} and it was killed"
    elif error.get("kind") == "memory":
        reason = f"out of memory ({error['message']})"
    elif error.get("message"):
        reason = f"recommender raised {error['message']}"
    else:
        reason = f"worker crashed (exit code {proc.returncode})"
    store.mark_run(home, run_id, "failed", error=reason, stderr_tail=_tail(stderr_path),
                   peak_memory_bytes=error.get("peak_memory_bytes"))
    raise RunError(f"run {run_id} failed: {reason}")


def _follow(proc: subprocess.Popen, stages: _Stages) -> None:
    """Turn the worker's JSON progress lines into stage events."""
    current = "spawn"
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        stage = event.pop("stage", None)
        if stage == "load":
            continue
        if current:
            stages.done(current, **event)
        current = stage if stage in ("fit", "recommend") else None
        if current:
            stages.start(current)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return str(n)


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5g', '1000000' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(float(t))
    except ValueError:
        raise HarnessError(f"--memory: cannot read size {text!r} (e.g. 2G, 512M)") from None


def _validate(recs, *, source, k, users):
    from harness.recs import validate_recommendations

    return validate_recommendations(recs, source=source, k=k, users=users)


def _evaluate(recs, truth, *, k, train, cold_users, item_categories):
    from harness.metrics import DEFAULT_KS, evaluate

    ks = tuple(x for x in DEFAULT_KS if x <= k) or (k,)
    if k not in ks and k > max(ks):
        ks = (*ks, k)
    return evaluate(recs, truth, ks=ks, train=train, cold_users=cold_users,
                    item_categories=item_categories)


def score_external(home: Path, recs_path, dataset: str, split: str | None, name: str,
                   ks=None) -> dict:
    """Score lists produced elsewhere against the prepared split's truth; store an external run."""
    from harness.metrics import DEFAULT_KS, evaluate
    from harness.recs import read_table, validate_recommendations
    from harness.store.splits import load_split

    recs_path = Path(recs_path)
    prepared = load_split(home, dataset, split, parts=("train", "truth", "test_users", "items"))
    raw = read_table(recs_path)
    recs, report = validate_recommendations(
        raw, source=str(recs_path), users=prepared.test_users.get_column(Columns.USER))
    ks = tuple(ks) if ks else DEFAULT_KS
    cold = prepared.test_users.filter(pl.col("cold")).get_column(Columns.USER)
    evaluation = evaluate(recs, prepared.truth, ks=ks,
                          train=prepared.train.select(Columns.USER, Columns.ITEM),
                          cold_users=cold, item_categories=_categories(prepared.items))
    run_id = new_run_id()
    recs_file = runs_dir(home) / f"{run_id}.parquet"
    now = datetime.now()
    store.create_run(home, {
        "run_id": run_id, "recommender": name, "parameters": {}, "k": max(ks),
        "dataset": prepared.dataset, "split": prepared.split, "fingerprint": prepared.fingerprint,
        "harness_version": __version__, "started_at": now, "external": True, "baseline": False,
        **_environment(),
    })
    try:
        recs.write_parquet(recs_file, compression="zstd")
        store.finish_run(home, run_id, metrics=evaluation.metrics, per_user=evaluation.per_user,
                         fields={"ended_at": datetime.now(),
                                 "recs_path": str(recs_file.relative_to(home)),
                                 "report": {"validation": report, "notices": evaluation.notices,
                                            "source": str(recs_path)}})
    except BaseException as exc:
        recs_file.unlink(missing_ok=True)
        store.mark_run(home, run_id, "aborted" if isinstance(exc, KeyboardInterrupt) else "failed",
                       error=f"{type(exc).__name__}: {exc}")
        raise
    return store.get_run(home, run_id)
