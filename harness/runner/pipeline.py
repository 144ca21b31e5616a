"""The submit pipeline: run a recommender on a prepared split in a worker process, validate and
score its lists, store the run; and :func:`score_external` for lists made elsewhere.

Stages: load (split from the store), handoff (train/users/items/test users as parquet in a private
temporary directory), spawn (worker start-up and reading those files), fit and recommend (worker
process, under the time and memory limits: :mod:`harness.runner.process`), validate, score, store.
The database is opened only briefly (create the run, then finish it in one transaction), never
while the worker runs, so the leaderboard stays readable during training.
"""

from __future__ import annotations

import json
import platform
import secrets
import tempfile
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
from harness.runner.process import allowed_cores, run_worker
from harness.store import runs as store

Progress = Callable[[str, str, dict], None]  # (stage, "start" | "done" | "progress", details)


def new_run_id() -> str:
    """Sortable and unique: start time plus random suffix."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


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

    def report(self, stage: str, **details) -> None:
        """A model's own progress inside a stage (``harness.api.report_progress``)."""
        if self.progress:
            self.progress(stage, "progress", details)


def submit(home: Path, name: str, *, dataset: str, split: str | None = None,
           params: dict[str, str] | None = None, k: int = 100, timeout: float | None = None,
           memory: int | None = None, seed: int = 0, progress: Progress | None = None) -> store.Run:
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
    store.create_run(home, store.Run(
        run_id=run_id, recommender=name, parameters=params, seed=seed, k=k,
        dataset=prepared.dataset, split=prepared.split, fingerprint=prepared.fingerprint,
        harness_version=__version__, plugin_distribution=info.distribution,
        plugin_version=info.version, baseline=info.value.startswith("baselines."),
        started_at=datetime.now(), external=False, **_environment(),
    ))
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
        try:  # ids of the lists that cannot match the truth's (harness.ids) fail the run
            evaluation = _evaluate(recs, truth, k=k, train=train_pairs, cold_users=cold,
                                   item_categories=categories, source=f"{name} (run {run_id})")
        except ValidationError as exc:
            store.mark_run(home, run_id, "failed", error=f"invalid recommendations: {exc}", **result)
            raise RunError(f"run {run_id} failed: invalid recommendations: {exc}") from exc
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
    return store.get_run(home, run_id)


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


def _run_worker(home: Path, run_id: str, workdir: Path, *, timeout: float | None,
                memory: int | None, stages: _Stages) -> dict[str, Any]:
    """Run the worker; return its timings or store a failed run and raise RunError."""
    stages.start("spawn")  # worker start-up, imports and reading the handed-over files
    outcome = run_worker(workdir, timeout=timeout, memory=memory, on_event=_follower(stages))
    if outcome.ok:
        return outcome.result
    store.mark_run(home, run_id, "failed", error=outcome.reason, stderr_tail=outcome.stderr_tail,
                   peak_memory_bytes=outcome.peak_memory_bytes)
    raise RunError(f"run {run_id} failed: {outcome.reason}")


def _follower(stages: _Stages):
    """Turn the worker's progress events into stage events (spawn, fit, recommend)."""
    current = ["spawn"]

    def on_event(event: dict) -> None:
        event = dict(event)
        if "progress" in event:  # a model's report_progress: relayed, no stage change
            stages.report(str(event.pop("progress")), **event)
            return
        stage = event.pop("stage", None)
        if stage == "load":
            return
        if current[0]:
            stages.done(current[0], **event)
        current[0] = stage if stage in ("fit", "recommend") else None
        if current[0]:
            stages.start(current[0])

    return on_event


def _validate(recs, *, source, k, users):
    from harness.recs import validate_recommendations

    return validate_recommendations(recs, source=source, k=k, users=users)


def _evaluate(recs, truth, *, k, train, cold_users, item_categories, source="recommendations"):
    from harness.metrics import DEFAULT_KS, evaluate

    ks = tuple(x for x in DEFAULT_KS if x <= k) or (k,)
    if k not in ks and k > max(ks):
        ks = (*ks, k)
    return evaluate(recs, truth, ks=ks, train=train, cold_users=cold_users,
                    item_categories=item_categories, source=source)


def score_external(home: Path, recs_path, dataset: str, split: str | None, name: str,
                   ks=None) -> store.Run:
    """Score lists produced elsewhere against the prepared split's truth; store an external run."""
    from harness.metrics import DEFAULT_KS, evaluate
    from harness.recs import read_table, validate_recommendations
    from harness.store.splits import load_split

    recs_path = Path(recs_path)
    prepared = load_split(home, dataset, split, parts=("train", "truth", "test_users", "items"))
    raw = read_table(recs_path)
    if Columns.USER in raw.columns and Columns.ITEM in raw.columns and raw.height:
        from harness.ids import align_ids

        raw, prepared.truth = align_ids(raw, prepared.truth, source=str(recs_path),
                                        against=f"the truth of {prepared.dataset}")
    recs, report = validate_recommendations(
        raw, source=str(recs_path), users=prepared.test_users.get_column(Columns.USER))
    ks = tuple(ks) if ks else DEFAULT_KS
    cold = prepared.test_users.filter(pl.col("cold")).get_column(Columns.USER)
    evaluation = evaluate(recs, prepared.truth, ks=ks,
                          train=prepared.train.select(Columns.USER, Columns.ITEM),
                          cold_users=cold, item_categories=_categories(prepared.items),
                          source=str(recs_path))
    run_id = new_run_id()
    recs_file = runs_dir(home) / f"{run_id}.parquet"
    now = datetime.now()
    store.create_run(home, store.Run(
        run_id=run_id, recommender=name, k=max(ks), dataset=prepared.dataset,
        split=prepared.split, fingerprint=prepared.fingerprint, harness_version=__version__,
        started_at=now, external=True, **_environment(),
    ))
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
