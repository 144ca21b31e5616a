"""The worker process: ``python -m harness.runner.worker DIR`` (in the sandbox, DIR is /job).

Reads only what the parent wrote into DIR (train, users, items, test users, job.json), builds the
recommender, fits it and asks for the lists, then writes ``recs.parquet`` and ``result.json``
(timings, peak memory). It never sees the truth or the database. Progress goes to the original
stdout as JSON lines (``{"stage": "fit"}``); the plugin's own prints go to stderr. A failure
writes ``error.json`` (kind ``config``, ``usage`` (a parameter out of its declared bounds) or
``plugin`` when the model could not be built from its parameters, ``memory``, or ``error``) and exits non-zero.

The model comes from ``job.json``'s ``model``: ``{"entry_point": NAME, "value": "pkg.mod:Class"}``
(the parent resolved the name; nothing is discovered here), or ``{"pickle": FILE}``, a model object
serialised by value (cloudpickle) into a file of DIR, for models defined in a notebook.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
import traceback
from datetime import datetime
from pathlib import Path

EXIT_ERROR = 1
EXIT_MEMORY = 3
EXIT_ORPHANED = 4


_progress = sys.stdout


def _say(**event) -> None:
    _progress.write(json.dumps(event, default=_plain) + "\n")
    _progress.flush()


def _own_stdout() -> None:
    """Keep the progress channel for ourselves; the plugin's prints go to stderr."""
    global _progress
    _progress = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def build_model(workdir: Path, job: dict):
    """The model object the job names (see the module docstring)."""
    from importlib import metadata

    from harness import plugins
    from harness.api import ENTRY_POINT_GROUP
    from harness.errors import PluginError

    spec = job["model"]
    if "pickle" in spec:
        import pickle

        with open(workdir / spec["pickle"], "rb") as fh:
            return pickle.load(fh)
    name = spec["entry_point"]
    ep = metadata.EntryPoint(name=name, value=spec["value"], group=ENTRY_POINT_GROUP)
    try:
        factory = ep.load()
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise PluginError(
            f"recommender {name!r} ({spec['value']}) failed to import: {first}"
        ) from exc
    return plugins.instantiate(name, factory, job["params"])


def _plain(value):
    """numpy/torch scalars in a progress report as numbers, anything else as text."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(workdir: Path) -> None:
    import polars as pl

    from harness.api import Columns, TrainData

    job = json.loads((workdir / "job.json").read_text())
    _say(stage="load")
    train = pl.read_parquet(workdir / "train.parquet")
    users = (
        pl.read_parquet(workdir / "users.parquet") if (workdir / "users.parquet").exists() else None
    )
    items = (
        pl.read_parquet(workdir / "items.parquet") if (workdir / "items.parquet").exists() else None
    )
    test_users = pl.read_parquet(workdir / "test_users.parquet").get_column(Columns.USER)
    cutoff = datetime.fromisoformat(job["cutoff"]) if job.get("cutoff") else None
    data = TrainData(
        train, users=users, items=items, cutoff=cutoff, seed=job["seed"], n_threads=job["n_threads"]
    )
    from harness import api

    # a model's report_progress(...) becomes a JSON line the parent relays to the terminal
    api._progress_hook = lambda stage, fields: _say(progress=stage, **fields)
    model = build_model(workdir, job)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(job["n_threads"])
    _say(stage="fit")
    start = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - start
    _say(stage="recommend", fit_seconds=fit_seconds)
    start = time.perf_counter()
    _recommend_in_batches(model, test_users, job["k"], workdir / "recs.parquet")
    recommend_seconds = time.perf_counter() - start
    result = {
        "fit_seconds": fit_seconds,
        "recommend_seconds": recommend_seconds,
        "peak_memory_bytes": _peak_rss(),
    }
    (workdir / "result.json").write_text(json.dumps(result))
    _say(stage="done", **result)


RECOMMEND_USERS = 100_000  # users per recommend call: 10M list rows at k = 100, about 160 MB


def _recommend_in_batches(model, users, k: int, path: Path) -> None:
    """Ask for the lists of ``RECOMMEND_USERS`` users at a time and append each answer to the
    parquet file (one row group or more per batch), so that neither this process nor the parent
    that validates the file a chunk at a time holds every list at once (96M rows at 960k users).
    Every batch must have the first batch's columns and types (else TypeError)."""
    import polars as pl
    import pyarrow.parquet as pq

    from harness.api import Columns, batches
    from harness.recs import CHUNK_ROWS

    writer = schema = None
    try:
        for part in batches(users.len(), RECOMMEND_USERS) if users.len() else [slice(0, 0)]:
            recs = model.recommend(users[part], k)
            if not isinstance(recs, pl.DataFrame):
                raise TypeError(
                    f"recommend returned {type(recs).__name__}, expected a polars DataFrame"
                )
            if schema is None:
                schema = recs.schema
            elif recs.schema != schema:
                try:
                    recs = recs.select(list(schema)).cast(schema)
                except Exception:  # noqa: BLE001 - named below
                    raise TypeError(
                        f"recommend returned columns {dict(recs.schema)} for one "
                        f"batch of users and {dict(schema)} for another"
                    ) from None
            table = recs.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="lz4")
            table = table.cast(writer.schema)
            # row groups of whole users, about as many rows as the parent reads at a time: it
            # then reads a group as one buffer per column (harness.recs.ListReader)
            for start, end in _user_groups(recs.get_column(Columns.USER), CHUNK_ROWS):
                writer.write_table(table.slice(start, end - start), row_group_size=end - start)
            del recs, table
    finally:
        if writer is not None:
            writer.close()


def _user_groups(users, size: int) -> list[tuple[int, int]]:
    """(start, end) rows of consecutive parts of about ``size`` rows each, cut only where the
    user id changes (one part where it never does)."""
    import numpy as np

    from harness.pairs import run_starts

    n = users.len()
    if n == 0:
        return []
    changes = run_starts(users)
    changes = changes[changes > 0]
    # the first change at or after each multiple of size
    at = np.searchsorted(changes, np.arange(size, n, size))
    cuts = np.unique(changes[at[at < len(changes)]])
    bounds = [0, *cuts.tolist(), n]
    return list(zip(bounds[:-1], bounds[1:]))


def _exit(code: int) -> None:
    """Leave at once: after a failure, interpreter shutdown can block on a plugin's threads."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_with_parent() -> None:
    """Leave when the parent dies (SIGKILL gives it no chance to kill us): nobody would read the
    lists, and the worker runs in its own session, so nothing else would stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        _exit(EXIT_ORPHANED)

    threading.Thread(target=watch, daemon=True, name="harness-parent-watch").start()


def main() -> None:
    from harness.errors import ConfigError, PluginError, UsageError

    workdir = Path(sys.argv[1])
    _own_stdout()
    _exit_with_parent()
    try:
        run(workdir)
    except (ConfigError, PluginError) as exc:  # the model could not be built: an input error
        kind = (
            "usage"
            if isinstance(exc, UsageError)
            else "config"
            if isinstance(exc, ConfigError)
            else "plugin"
        )
        (workdir / "error.json").write_text(json.dumps({"kind": kind, "message": str(exc)}))
        _exit(EXIT_ERROR)
    except MemoryError:
        (workdir / "error.json").write_text(
            json.dumps(
                {
                    "kind": "memory",
                    "message": "out of memory (MemoryError)",
                    "peak_memory_bytes": _peak_rss(),
                }
            )
        )
        _exit(EXIT_MEMORY)
    except BaseException as exc:  # noqa: BLE001 - everything the plugin raises is reported
        traceback.print_exc()
        message = (
            f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            if str(exc)
            else type(exc).__name__
        )
        (workdir / "error.json").write_text(
            json.dumps({"kind": "error", "message": message, "peak_memory_bytes": _peak_rss()})
        )
        _exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
