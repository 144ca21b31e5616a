"""Storage: the only package that writes SQL for storage.

One DuckDB file in the home directory. Connections are short-lived (open, do one job, close) so
that no command holds the database while a model trains; a second process that finds the file
locked retries for a while instead of failing at once (DuckDB does not wait on its own).

- :mod:`harness.store.migrations`: numbered schema migrations, applied once per process, on the
  first write connection (or before the first read of a file whose schema is behind).
- :mod:`harness.store.splits`: prepared splits (train, truth, test users, users, items, metadata).
- :mod:`harness.store.runs`: runs, their metrics per segment and per user.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from harness.config import db_path
from harness.errors import HarnessError

LOCK_WAIT_SECONDS = 30.0

# DuckDB shares one database instance per file within a process and refuses a second connection
# with another configuration ("different configuration than existing connections"): a read-only
# open while a write connection is open here, or the reverse. So this process keeps count of its
# open connections per file: a read-only open joins an open writer (read-write, used for reading
# only), a write open waits until this process's read-only connections close.
_open_lock = threading.Condition()
_open: dict[str, list] = {}  # path -> [read_only, count]
# Files this process has migrated (path, inode): concurrent migrations of one instance would
# conflict ("write-write conflict on create"), so they run under a lock, once per process.
_migrate_lock = threading.Lock()
_migrated: set[tuple[str, int]] = set()


@contextlib.contextmanager
def connect(home: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the home's database for one job; migrate it first when opened for writing.

    A read-only open of a database that does not exist yet, or whose schema is behind, migrates
    it first (with a write connection), so readers never see a missing table.
    """
    path = db_path(home)
    if read_only and not _schema_current(path):
        with connect(home):
            pass
    with _connection(path, read_only) as con:
        if not read_only:
            _migrate_once(con, path)
        yield con


@contextlib.contextmanager
def _connection(path: Path, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    key = str(path.resolve())
    mode = _register(key, read_only)
    try:
        con = _open_with_retry(path, mode)
        try:
            yield con
        finally:
            con.close()
    finally:
        _unregister(key)


def _schema_current(path: Path) -> bool:
    """Whether the file exists with every migration applied (checked once per process)."""
    from harness.store.migrations import MIGRATIONS

    if not path.exists():
        return False
    if _identity(path) in _migrated:
        return True
    with _connection(path, True) as con:
        try:
            version = con.sql("SELECT max(version) FROM schema_version").fetchall()[0][0]
        except duckdb.CatalogException:  # created a moment ago, not migrated yet
            return False
    if version != MIGRATIONS[-1][0]:
        return False
    with _migrate_lock:
        _migrated.add(_identity(path))
    return True


def _identity(path: Path) -> tuple[str, int]:
    return str(path.resolve()), os.stat(path).st_ino


def _register(key: str, read_only: bool) -> bool:
    """Count a connection to ``key``; return the mode to open it with (True: read-only)."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    with _open_lock:
        while True:
            held = _open.get(key)
            if held is None or held[0] == read_only or not held[0]:
                mode = read_only if held is None else held[0]
                if held is None:
                    _open[key] = held = [mode, 0]
                held[1] += 1
                return mode
            # a write open while this process reads read-only: wait for the readers to close
            left = deadline - time.monotonic()
            if left <= 0 or not _open_lock.wait(timeout=left):
                raise HarnessError(f"{key}: a read-only connection of this process stayed open "
                                   f"for {LOCK_WAIT_SECONDS:g} s; cannot open it for writing")


def _unregister(key: str) -> None:
    with _open_lock:
        held = _open[key]
        held[1] -= 1
        if held[1] == 0:
            del _open[key]
            _open_lock.notify_all()


def _migrate_once(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    from harness.store.migrations import migrate

    with _migrate_lock:
        ident = _identity(path)
        if ident not in _migrated:
            migrate(con)
            _migrated.add(ident)


def _open_with_retry(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise HarnessError(
                    f"{path}: database is locked by another harness process ({exc})"
                ) from exc
            time.sleep(0.05 + random.random() * 0.2)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit on success, roll back on any exception (KeyboardInterrupt included)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        con.execute("COMMIT")
