"""Runs, their metrics per segment and per user: the only module that writes runs SQL.

A run is created with status ``running`` before its worker starts (short connection, closed
while the model trains), then either finished in one transaction together with all its metrics
(``ok``) or marked ``failed`` / ``aborted`` with the reason. Readers therefore never see half a
run: metrics exist only for runs whose status is ``ok``.

A run records the pid and host of the process that submitted it. A ``running`` run whose process
is gone (killed with SIGKILL, the machine rebooted) can never finish: readers present it as
``aborted`` and the next run created on that host stores it so. Runs of other hosts are left as
they are (their processes cannot be checked from here).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from harness.errors import NotFoundError
from harness.store import connect, transaction

if TYPE_CHECKING:
    import numpy as np


@dataclass
class Run:
    """One run: a row of ``runs``; ``metrics`` (segment ``all``) and ``segments`` are read with it.

    Building a run with a key that is not a field is a TypeError, so a misspelt field fails at
    once instead of being dropped on the way to the database.
    """

    run_id: str
    recommender: str
    dataset: str
    split: str
    fingerprint: str
    parameters: dict[str, Any] = field(default_factory=dict)  # the -p strings
    seed: int | None = None
    k: int | None = None
    harness_version: str | None = None
    plugin_distribution: str | None = None
    plugin_version: str | None = None
    baseline: bool = False
    python: str | None = None
    platform: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    fit_seconds: float | None = None
    recommend_seconds: float | None = None
    peak_memory_bytes: int | None = None
    status: str = "running"
    error: str | None = None
    stderr_tail: str | None = None
    external: bool = False
    recs_path: str | None = None
    report: dict[str, Any] | None = None
    user_metric_names: list[str] | None = None
    user_values_path: str | None = None  # the per-user values file, relative to the home
    pid: int | None = None
    host: str | None = None
    sandbox: str | None = None  # bwrap or none; NULL for external runs
    tags: list[str] = field(default_factory=list)  # --tag (harness.labels), in the order given
    note: str | None = None  # --note
    metrics: dict[str, float] = field(default_factory=dict)
    segments: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_READ_ONLY = ("metrics", "segments")  # filled on read from run_metrics, not columns of runs
_COLUMNS = tuple(f.name for f in dataclasses.fields(Run) if f.name not in _READ_ONLY)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    """Column values for SQL: JSON for parameters and report; unknown keys are an error."""
    unknown = sorted(set(values) - set(_COLUMNS))
    if unknown:
        raise TypeError(f"unknown run field(s): {', '.join(unknown)}")
    out = dict(values)
    if "parameters" in out:
        out["parameters"] = json.dumps(out["parameters"] or {}, sort_keys=True)
    if out.get("report") is not None:
        out["report"] = json.dumps(out["report"], default=str)
    return out


def create_run(home: Path, run: Run) -> None:
    """Insert a run with status ``running``, owned by this process."""
    row = _encode({k: v for k, v in asdict(run).items() if k not in _READ_ONLY})
    row.update(
        status="running", pid=row["pid"] or os.getpid(), host=row["host"] or socket.gethostname()
    )
    with connect(home) as con:
        _store_orphans(con)
        con.execute(
            f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )


def user_values_file(home: Path, run_id: str) -> Path:
    """Where the per-user values of a run are kept: a parquet file beside its lists."""
    from harness.config import runs_dir

    return runs_dir(home) / f"{run_id}.users.parquet"


def finish_run(
    home: Path,
    run_id: str,
    *,
    metrics: dict[str, dict[str, float]],
    per_user: pl.DataFrame | None,
    fields: dict[str, Any],
) -> None:
    """Store metrics, per-user metrics and the final fields, and set status ``ok``: one transaction.

    The per-user values (``user_id`` as text, ``segment``, one column per metric) go to
    :func:`user_values_file`, written before the transaction that names it and removed when it
    fails: 0.7 CPU-s for 957k users x 48 values, where the same values as a ``DOUBLE[]`` column of
    ``run_user_metrics`` cost DuckDB about 3 CPU-s to compress, and a board reads only the column
    of its metric instead of every run's whole lists of values."""
    metric_rows = pl.DataFrame(
        [
            {
                "run_id": run_id,
                "segment": seg,
                "metric": m,
                "value": float(v) if v is not None else None,
            }
            for seg, values in metrics.items()
            for m, v in values.items()
        ],
        schema={"run_id": pl.Utf8, "segment": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64},
    )
    names = _metric_names(per_user)
    path = user_values_file(home, run_id) if names else None
    try:
        if path is not None and names and per_user is not None:
            _write_user_values(per_user, names, path)
        with connect(home) as con, transaction(con):
            con.register("metric_rows", metric_rows)
            con.execute(
                "INSERT INTO run_metrics SELECT run_id, segment, metric, value FROM metric_rows"
            )
            _update(
                con,
                run_id,
                {
                    **fields,
                    "status": "ok",
                    "user_metric_names": names,
                    "user_values_path": path.relative_to(home).as_posix() if path else None,
                },
            )
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise


def _metric_names(per_user: pl.DataFrame | None) -> list[str] | None:
    """The metric columns of a per-user frame; None when it has no users or no metric."""
    if per_user is None or per_user.height == 0:
        return None
    return [c for c in per_user.columns if c not in ("user_id", "segment")] or None


def _write_user_values(per_user: pl.DataFrame, names: list[str], path: Path) -> None:
    """The per-user values as parquet: written under a temporary name, then moved into place."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        per_user.select(
            pl.col("user_id").cast(pl.Utf8),
            pl.col("segment").cast(pl.Utf8),
            *(pl.col(c).cast(pl.Float64) for c in names),
        ).write_parquet(tmp, compression="lz4", statistics=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _user_values_path(home: Path, stored: str | None) -> Path | None:
    return Path(home) / stored if stored else None


def user_metrics(home: Path, run_id: str) -> pl.DataFrame:
    """A run's per-user metrics, wide: user_id (as text), segment, one column per metric."""
    with connect(home, read_only=True) as con:
        names = con.sql(
            "SELECT user_metric_names, user_values_path FROM runs WHERE run_id = ?",
            params=[run_id],
        ).fetchall()
        path = _user_values_path(home, names[0][1]) if names else None
        frame = (
            None
            if path is not None
            else con.sql(
                "SELECT user_id, segment, metric_values FROM run_user_metrics "
                "WHERE run_id = ? ORDER BY user_id",
                params=[run_id],
            ).pl()
        )
    if not names or not names[0][0]:
        return pl.DataFrame(schema={"user_id": pl.Utf8, "segment": pl.Utf8})
    if path is not None:
        return pl.read_parquet(path, columns=["user_id", "segment", *names[0][0]]).sort(
            "user_id", maintain_order=True
        )
    assert frame is not None
    return frame.select(
        "user_id",
        "segment",
        *(pl.col("metric_values").list.get(i).alias(n) for i, n in enumerate(names[0][0])),
    )


def _update(con: duckdb.DuckDBPyConnection, run_id: str, values: dict[str, Any]) -> None:
    row = _encode(values)
    con.execute(
        f"UPDATE runs SET {', '.join(f'{c} = ?' for c in row)} WHERE run_id = ?",
        [*row.values(), run_id],
    )


def mark_run(
    home: Path,
    run_id: str,
    status: str,
    *,
    error: str | None = None,
    stderr_tail: str | None = None,
    **fields: Any,
) -> None:
    """Mark a run ``failed`` or ``aborted`` with its reason; any stray metrics are removed."""
    if status not in ("failed", "aborted"):
        raise ValueError(status)
    with connect(home) as con, transaction(con):
        con.execute("DELETE FROM run_metrics WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM run_user_metrics WHERE run_id = ?", [run_id])
        _update(
            con,
            run_id,
            {
                "ended_at": datetime.now(),
                **fields,
                "status": status,
                "error": error,
                "stderr_tail": stderr_tail,
                "user_values_path": None,
            },
        )
    user_values_file(home, run_id).unlink(missing_ok=True)


def run_status(home: Path, run_id: str) -> str | None:
    """The stored status of a run (``running`` as stored, not as presented), None if not stored."""
    with connect(home, read_only=True) as con:
        rows = con.sql("SELECT status FROM runs WHERE run_id = ?", params=[run_id]).fetchall()
    return rows[0][0] if rows else None


def _orphan_error(pid: int | None, host: str | None) -> str:

    return f"the submitting process (pid {pid} on {host}) ended without finishing the run"


def _is_orphan(status: str, pid: int | None, host: str | None, started_at: datetime | None) -> bool:
    """A ``running`` run of this host whose process is gone (or whose pid now names a newer process)."""
    if status != "running" or pid is None or host != socket.gethostname():
        return False
    import psutil

    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # exists but cannot be inspected: assume it is the owner
        return False
    return started_at is not None and created > started_at.timestamp() + 1.0


def _store_orphans(con) -> None:
    """Mark this host's orphaned ``running`` runs ``aborted`` (called on writes)."""
    rows = con.sql(
        "SELECT run_id, pid, host, started_at FROM runs WHERE status = 'running' AND host = ?",
        params=[socket.gethostname()],
    ).fetchall()
    for run_id, pid, host, started_at in rows:  # a handful of running runs, not users
        if _is_orphan("running", pid, host, started_at):
            _update(
                con,
                run_id,
                {
                    "status": "aborted",
                    "error": _orphan_error(pid, host),
                    "ended_at": datetime.now(),
                },
            )


def _decode(row: dict[str, Any]) -> Run:
    """A stored row as a Run; an orphaned ``running`` run shows as ``aborted`` (reads do not write)."""
    run = Run(
        **{
            **row,
            "parameters": json.loads(row["parameters"] or "{}"),
            "report": json.loads(row["report"]) if row["report"] else None,
            "tags": list(row.get("tags") or []),
        }
    )
    if _is_orphan(run.status, run.pid, run.host, run.started_at):
        run.status = "aborted"
        run.error = _orphan_error(run.pid, run.host)
    return run


def list_runs(
    home: Path,
    dataset: str | None = None,
    limit: int | None = None,
    tags: list[str] | None = None,
) -> list[Run]:
    """Runs newest first (without metrics), optionally for one dataset and only those carrying
    every one of ``tags``."""
    conditions, args = _where(dataset=dataset, tags=tags)
    lim = f"LIMIT {int(limit)}" if limit else ""
    with connect(home, read_only=True) as con:
        frame = con.sql(
            f"SELECT * FROM runs {conditions} ORDER BY started_at DESC, run_id DESC {lim}",
            params=args,
        ).pl()
    return [_decode(r) for r in frame.to_dicts()]


def _where(dataset: str | None = None, tags: list[str] | None = None) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or "") and its parameters: one dataset, runs carrying all of ``tags``."""
    parts: list[str] = []
    args: list[Any] = []
    if dataset:
        parts.append("dataset = ?")
        args.append(dataset)
    if tags:
        parts.append("list_has_all(coalesce(tags, []), ?)")
        args.append(list(tags))
    return ("WHERE " + " AND ".join(parts) if parts else ""), args


def retag(
    home: Path,
    run_id: str,
    add: list[str],
    remove: list[str],
    *,
    note: str | None = None,
    set_note: bool = False,
) -> Run:
    """Add ``add`` to a run's tags and take ``remove`` away (each validated by harness.labels,
    as is the result's count); with ``set_note``, replace its note (None removes it). Returns
    the run as stored. ``run_id``: as :func:`get_run`."""
    from harness.labels import check_tags

    with connect(home) as con:
        run = _decode(_find_run(con, run_id).to_dicts()[0])
        tags = [t for t in run.tags if t not in remove]
        tags = check_tags(tags + [t for t in add if t not in remove])
        changes: dict[str, Any] = {"tags": tags}
        if set_note:
            changes["note"] = note
        _update(con, run.run_id, changes)
    run.tags = tags
    if set_note:
        run.note = note
    return run


def _find_run(con, run_id: str) -> pl.DataFrame:
    """The run named by its full id, a unique prefix, or a unique suffix (the short id boards show)."""
    found = con.sql(
        "SELECT * FROM runs WHERE starts_with(run_id, ?) OR ends_with(run_id, '-' || ?) "
        "ORDER BY run_id",
        params=[run_id, run_id],
    ).pl()
    if found.height == 0:
        raise NotFoundError(f"run {run_id!r} not found (see `harness runs`)")
    if run_id in found["run_id"].to_list():
        return found.filter(pl.col("run_id") == run_id)
    if found.height > 1:
        raise NotFoundError(
            f"run id {run_id!r} is ambiguous: {', '.join(found['run_id'].to_list()[:5])}"
        )
    return found


def _metric_key(metric: str) -> tuple[int, int, str]:
    """Report order: metric family as registered, then k as a number (@1, @5, @10, @100)."""
    from harness.metrics import REGISTRY

    name, _, k = metric.partition("@")
    names = REGISTRY.names()
    return (
        names.index(name) if name in names else len(names),
        int(k) if k.isdigit() else 0,
        metric,
    )


def get_run(home: Path, run_id: str) -> Run:
    """One run with ``metrics`` (segment all) and ``segments``; a unique id prefix or suffix is enough."""
    with connect(home, read_only=True) as con:
        run = _decode(_find_run(con, run_id).to_dicts()[0])
        metrics = con.sql(
            "SELECT segment, metric, value FROM run_metrics WHERE run_id = ?",
            params=[run.run_id],
        ).pl()
    for seg, metric, value in sorted(metrics.iter_rows(), key=lambda r: (r[0], _metric_key(r[1]))):
        run.segments.setdefault(seg, {})[metric] = value
    run.metrics = run.segments.get("all", {})
    return run


def delete_run(home: Path, run_id: str) -> Run:
    """Remove a run that is not live (any status but ``running``), its metrics, per-user values
    and lists file, in one transaction; return it. ``run_id``: as :func:`get_run`."""
    with connect(home) as con:
        run = _decode(_find_run(con, run_id).to_dicts()[0])
        if run.status == "running":
            from harness.errors import HarnessError

            raise HarnessError(f"run {run.run_id} is still running; stop it first (Ctrl-C)")
        with transaction(con):
            for table in ("run_user_metrics", "run_metrics", "runs"):
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run.run_id])
    for stored in (run.recs_path, run.user_values_path):
        if stored:
            (Path(home) / stored).unlink(missing_ok=True)
    return run


def leaderboard_rows(
    home: Path,
    dataset: str,
    split: str,
    fingerprint: str,
    segment: str = "all",
    tags: list[str] | None = None,
) -> pl.DataFrame:
    """Every ``ok`` run on this dataset, split and fingerprint (carrying every one of ``tags``):
    one row per run, one column per metric of ``segment`` (wide), plus the run's descriptive
    columns. Other fingerprints never mix in."""
    tagged = "AND list_has_all(coalesce(r.tags, []), ?)" if tags else ""
    extra = [list(tags)] if tags else []
    with connect(home, read_only=True) as con:
        runs = con.sql(
            "SELECT run_id, recommender, parameters, seed, k, baseline, external, fit_seconds, "
            "recommend_seconds, peak_memory_bytes, started_at, plugin_version, sandbox, "
            "coalesce(tags, []) AS tags, note FROM runs r "
            f"WHERE status = 'ok' AND dataset = ? AND split = ? AND fingerprint = ? {tagged}",
            params=[dataset, split, fingerprint, *extra],
        ).pl()
        metrics = con.sql(
            "SELECT m.run_id, m.metric, m.value FROM run_metrics m JOIN runs r USING (run_id) "
            "WHERE r.status = 'ok' AND r.dataset = ? AND r.split = ? AND r.fingerprint = ? "
            f"AND m.segment = ? {tagged}",
            params=[dataset, split, fingerprint, segment, *extra],
        ).pl()
    if metrics.height:
        wide = metrics.pivot(
            on="metric", index="run_id", values="value", aggregate_function="first"
        )
        runs = runs.join(wide, on="run_id", how="left")
    return runs


SCAN_MEMORY = "256MB"  # DuckDB's buffer pool while user_values scans one run after another


def user_values(
    home: Path, run_ids: list[str], metrics: list[str], segment: str = "all"
) -> tuple[pl.Series, dict[tuple[str, str], np.ndarray]]:
    """Per-user values of ``metrics`` for each of ``run_ids``, aligned on the same users.

    Returns (user ids as text, sorted; {(run_id, metric): float64 array in that order}). A
    (run, metric) the run did not store per user is missing from the mapping; a user a run has no
    row for gets NaN; the users are those of the first run that has values (runs on one
    fingerprint share them). ``segment`` ``all`` takes every user, else that segment's users.

    One plain scan per run (no SQL GROUP BY or ORDER BY over every run's rows: at 10 runs x 1M
    users those cost more than the scans); runs stored in the same user order as the first, the
    usual case, are aligned without a join."""
    import numpy as np

    out: dict[tuple[str, str], np.ndarray] = {}
    ref_ids: pl.Series | None = None
    order = None
    with connect(home, read_only=True) as con:
        # Each run is scanned once: DuckDB would keep every scanned block of the list column in
        # its buffer pool (about 0.2 GiB per run of 957k users, 2.1 GiB peak at 11 runs, and
        # slower for the fresh memory); a small pool evicts them (0.6 GiB and 45% less CPU there).
        con.execute(f"SET memory_limit = '{SCAN_MEMORY}'")
        found = con.sql(
            "SELECT run_id, user_metric_names, user_values_path FROM runs "
            "WHERE list_contains(?, run_id)",
            params=[run_ids],
        ).fetchall()
        names = {run_id: names for run_id, names, _ in found}
        paths = {run_id: _user_values_path(home, path) for run_id, _, path in found}
        for run_id in run_ids:
            stored = names.get(run_id) or []
            wanted = [m for m in metrics if m in stored]
            if not wanted:
                continue
            path = paths.get(run_id)
            if path is not None:  # a file: only the columns asked for are read
                scan = pl.scan_parquet(path)
                if segment != "all":
                    scan = scan.filter(pl.col("segment") == segment)
                frame = scan.select(
                    "user_id", *(pl.col(m).alias(f"c{i}") for i, m in enumerate(wanted))
                ).collect()
            else:  # stored before the files: a list column of run_user_metrics
                cols = ", ".join(
                    f"metric_values[{stored.index(m) + 1}] AS c{i}" for i, m in enumerate(wanted)
                )
                where = "" if segment == "all" else "AND segment = ?"
                frame = con.sql(
                    f"SELECT user_id, {cols} FROM run_user_metrics WHERE run_id = ? {where}",
                    params=[run_id, *([] if segment == "all" else [segment])],
                ).pl()
            ids = frame["user_id"]
            if ref_ids is None:
                order = ids.arg_sort()
                ref_ids = ids.gather(order)
                ref_raw = ids
            if ids.len() == ref_raw.len() and ids.equals(ref_raw):
                aligned = frame.select(pl.exclude("user_id")).gather(order)
            else:  # another user order or other users: join
                aligned = (
                    pl.DataFrame({"user_id": ref_ids})
                    .join(frame, on="user_id", how="left", maintain_order="left")
                    .select(pl.exclude("user_id"))
                )
            for i, m in enumerate(wanted):
                out[(run_id, m)] = aligned[f"c{i}"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    if ref_ids is None:
        return pl.Series("user_id", [], dtype=pl.Utf8), {}
    return ref_ids.alias("user_id"), out
