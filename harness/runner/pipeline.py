"""The submit pipeline: run a recommender on a prepared split in a worker process, validate and
score its lists (:mod:`harness.scoring`, the one scoring path), store the run.

Stages: load (split from the store), handoff (train/users/items/test users as parquet in a private
temporary directory), spawn (worker start-up and reading those files), fit and recommend (worker
process, under the time and memory limits: :mod:`harness.runner.process`), validate, score, store.
The database is opened only briefly (create the run, then finish it in one transaction), never
while the worker runs, so the leaderboard stays readable during training.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypedDict

import polars as pl

from harness import __version__, scoring
from harness.api import Columns
from harness.config import runs_dir
from harness.errors import (
    ConfigError,
    DataError,
    HarnessError,
    PluginError,
    RunError,
    UsageError,
    ValidationError,
)
from harness.metrics import Truth
from harness.runner import jobs
from harness.runner.process import allowed_cores, run_worker
from harness.store import runs as store

Progress = Callable[[str, str, dict], None]  # (stage, "start" | "done" | "progress", details)


def new_run_id() -> str:
    """Sortable and unique: start time plus random suffix."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class _Environment(TypedDict):
    python: str
    platform: str


def _environment() -> _Environment:
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


def submit(
    home: Path,
    name: str,
    *,
    dataset: str,
    split: str | None = None,
    params: dict[str, str] | None = None,
    k: int = 100,
    timeout: float | None = None,
    memory: int | None = None,
    seed: int = 0,
    sandbox: str = "auto",
    progress: Progress | None = None,
    pickled: bytes | None = None,
    tags: list[str] | None = None,
    note: str | None = None,
) -> store.Run:
    """Run recommender ``name`` on the prepared split and store the run; return the stored run.

    ``pickled``: a model object serialised by value (the Python API's ``harness.submit`` of a
    notebook model); ``name`` is then only its label, and the worker unpickles it instead of
    loading an entry point.

    ``sandbox``: "auto" runs the worker in bubblewrap (SandboxError, naming ``--sandbox none``,
    where it cannot start), "none" as a plain process (debugging; the run is marked so).
    No plugin code runs here: parameters are checked against the signature read from the plugin's
    source, else by the worker before ``fit``; either way a bad parameter stores no run.

    ``tags`` and ``note`` are stored with the run (harness.labels: UsageError before anything
    runs when one is malformed).

    Raises RunError (after storing a failed run) when the worker crashes, times out, runs out of
    memory or returns lists that break the contract. KeyboardInterrupt (Ctrl-C, or SIGTERM in
    the main thread) marks the run aborted.
    """
    from harness import labels, plugin_source, plugins
    from harness.config import MAX_K
    from harness.runner import sandbox as sb
    from harness.store.splits import export_split, load_split

    if k > MAX_K:
        raise HarnessError(f"--k must be at most {MAX_K}, got {k}")
    if k < 1:
        raise HarnessError(f"--k must be at least 1, got {k}")
    tags, note = labels.check_tags(tags), labels.check_note(note)
    isolation = "bwrap" if sb.check_mode(sandbox) == "auto" else "none"
    if isolation == "bwrap":
        sb.find_bwrap()
    params = dict(params or {})
    if pickled is None:
        ep = plugins.entry_point(name)
        module = ep.value.partition(":")[0].strip()
        declared = plugin_source.parameters(ep)
        if declared is not None:  # else the worker checks them, before any run is stored
            plugins.convert_params(name, declared, params)
        dist = getattr(ep, "dist", None)
        model: dict[str, str] = {"entry_point": name, "value": ep.value}
        readable = [p for p in [plugin_source.package_dir(module)] if p is not None]
        origin = (
            dist.metadata["Name"] if dist is not None else None,
            dist.version if dist is not None else None,
            ep.value.startswith("baselines."),
        )
    else:
        model, readable, origin = {"pickle": "model.pkl"}, [], ("python", None, False)
    jobs.sweep(home)
    stages = _Stages(progress)
    stages.start("load")
    # What this process needs; the worker's files are written by the store in the handoff,
    # which checks that the split is still this version (train and truth of one version).
    prepared = load_split(
        home,
        dataset,
        split,
        parts=("train", "truth", "test_users", "items"),
        columns={"train": (Columns.USER, Columns.ITEM)},
    )
    stages.done("load")
    run_id = new_run_id()
    row = store.Run(
        run_id=run_id,
        recommender=name,
        parameters=params,
        seed=seed,
        k=k,
        dataset=prepared.dataset,
        split=prepared.split,
        fingerprint=prepared.fingerprint,
        harness_version=__version__,
        plugin_distribution=origin[0],
        plugin_version=origin[1],
        baseline=origin[2],
        started_at=datetime.now(),
        external=False,
        sandbox=isolation,
        tags=tags,
        note=note,
        **_environment(),
    )
    created = False
    recs_file = runs_dir(home) / f"{run_id}.parquet"

    def create() -> None:
        nonlocal created
        if not created:
            store.create_run(home, row)
            created = True

    try:
        with jobs.job(home, run_id) as job, _sigterm_as_interrupt():
            stages.start("handoff")
            export_split(home, prepared, job.box)
            _write_job(job.box, prepared, model=model, params=params, k=k, seed=seed)
            if pickled is not None:
                (job.box / model["pickle"]).write_bytes(pickled)
            prepared.part("truth").write_parquet(job.truth)
            test_users = prepared.part("test_users").get_column(Columns.USER)
            cold = prepared.part("test_users").filter(pl.col("cold")).get_column(Columns.USER)
            train_pairs = prepared.part("train")
            categories = _categories(prepared.items)
            del prepared
            stages.done("handoff")
            stages.start("spawn")  # worker start-up, imports and reading the handed-over files
            # this process waits while the model runs: what the score stage of long lists loads
            # on first use (numba and its kernels' code generator, about 1.5 CPU-s) loads meanwhile
            scoring.warm_up(test_users.len() * k)
            follow = _follower(stages)

            def on_event(event: dict) -> None:
                if event.get("stage") == "fit":  # the model is built: from here on, a run
                    create()
                follow(event)

            outcome = run_worker(
                job.box,
                sandbox=isolation,
                timeout=timeout,
                memory=memory,
                on_event=on_event,
                hidden=[home],
                masked=_embedded_data(),
                readable=readable,
            )
            if not outcome.ok:
                if not created and outcome.kind == "config":
                    raise ConfigError(outcome.reason)
                if not created and outcome.kind == "usage":
                    raise UsageError(outcome.reason)
                if not created and outcome.kind == "plugin":
                    raise PluginError(outcome.reason)
                create()
                store.mark_run(
                    home,
                    run_id,
                    "failed",
                    error=outcome.reason,
                    stderr_tail=outcome.stderr_tail,
                    peak_memory_bytes=outcome.peak_memory_bytes,
                )
                raise RunError(f"run {run_id} failed: {outcome.reason}")
            result = outcome.result
            # validated and scored a chunk of users at a time, straight from the worker's file;
            # the normalised lists go to job.recs as they pass (the store stage moves them)
            stages.start("score")
            # the truth of the version this run started on, held compact (harness.metrics.Truth)
            truth = Truth.of(pl.read_parquet(job.truth))
            try:
                lists = _lists_file(job.box / "recs.parquet")
                scored = scoring.score_lists(
                    lists,
                    truth,
                    ks=scoring.ks_for(k),
                    train=train_pairs,
                    cold_users=cold,
                    item_categories=categories,
                    users=test_users,
                    k=k,
                    name=f"{name} (run {run_id})",
                    write_to=job.recs,
                    adopt=True,
                )
            except (ValidationError, DataError) as exc:
                store.mark_run(
                    home, run_id, "failed", error=f"invalid recommendations: {exc}", **result
                )
                raise RunError(f"run {run_id} failed: invalid recommendations: {exc}") from exc
            del truth, train_pairs
            report = scored.report
            stages.done(
                "score", **{k_: v for k_, v in report.items() if isinstance(v, (int, float))}
            )
            stages.start("store")
            scoring.store_run(
                home,
                run_id,
                scored,
                recs_file=recs_file,
                written=job.recs,
                fields=result,
                report={"parent_seconds": stages.seconds},
            )
            stages.done("store")
    except BaseException as exc:
        recs_file.unlink(missing_ok=True)
        if created:
            if isinstance(exc, KeyboardInterrupt):
                store.mark_run(home, run_id, "aborted", error=_interrupt_reason(exc))
            elif not isinstance(exc, RunError):  # a RunError's run is already marked failed
                store.mark_run(home, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return store.get_run(home, run_id)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the worker is killed and the run stored as aborted."""


def _interrupt_reason(exc: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """In the main thread, turn SIGTERM into :class:`Terminated` for the duration."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _embedded_data() -> list[Path]:
    """The dataset files shipped inside the package: covered in the sandbox (a model has no use
    for them, and the truth of the embedded dataset is computed from them). This process's copy
    and every copy on the worker's import path: run from a source checkout, this process imports
    the checkout's harness while the worker imports the installed one."""
    from harness.datasets.registry import EMBEDDED
    from harness.runner import sandbox as sb

    copies = [EMBEDDED, *sb.on_import_path("harness/datasets/embedded")]
    return list({os.path.realpath(p): p for p in copies}.values())


def _lists_file(path: Path) -> Path:
    """The worker's lists file; the sandboxed code made it, so it must be a plain file here (a
    corrupt one fails in the reader, with a DataError): else a ValidationError."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise ValidationError("recs.parquet is not a regular file")
    except FileNotFoundError:
        raise ValidationError("the worker wrote no recs.parquet") from None
    return path


def _write_job(workdir: Path, prepared, *, model: dict, params: dict, k: int, seed: int) -> None:
    """The job description of the worker, beside the split's files that
    :func:`harness.store.splits.export_split` wrote into ``workdir``. ``model``: ``{"entry_point",
    "value"}`` or ``{"pickle": FILE}`` with FILE already in ``workdir`` (see
    :mod:`harness.runner.worker`). The features are only those the model may know at the cutoff:
    items of the training part (a catalogue row of a film first rated after the cutoff would leak
    its existence) and the users of train or of the test list (cold users are asked for, so their
    features are fair game)."""
    cutoff = prepared.cutoff.isoformat() if prepared.cutoff is not None else None
    (workdir / "job.json").write_text(
        json.dumps(
            {
                "model": model,
                "params": params,
                "k": k,
                "seed": seed,
                "cutoff": cutoff,
                "n_threads": allowed_cores(),
            }
        )
    )


def _categories(items: pl.DataFrame | None) -> pl.DataFrame | None:
    if items is None or Columns.CATEGORIES not in items.columns:
        return None
    return items.select(Columns.ITEM, Columns.CATEGORIES)


def _follower(stages: _Stages):
    """Turn the worker's progress events into stage events (spawn, fit, recommend); the fields
    come from sandboxed code, so only numbers pass."""
    current: list[str | None] = ["spawn"]

    def on_event(event: dict) -> None:
        event = dict(event)
        if "progress" in event:  # a model's report_progress: relayed, no stage change
            stages.report(str(event.pop("progress")), **event)
            return
        stage = event.get("stage")
        event = {
            k: v
            for k, v in event.items()
            if k in ("fit_seconds", "recommend_seconds", "peak_memory_bytes")
            and isinstance(v, (int, float))
        }
        if stage == "load":
            return
        if current[0]:
            stages.done(current[0], **event)
        current[0] = stage if stage in ("fit", "recommend") else None
        if current[0]:
            stages.start(current[0])

    return on_event
