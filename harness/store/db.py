"""Connections and transactions: open a DuckDB file for one job, wait for another process's lock.

DuckDB shares one database instance per file within a process and refuses a second connection
with another configuration ("different configuration than existing connections"): a read-only
open while a write connection is open here, or the reverse. So this process keeps count of its
open connections per file: a read-only open joins an open writer (read-write, used for reading
only), a write open waits until this process's read-only connections close. A second process that
finds the file locked retries for a while instead of failing at once (DuckDB does not wait).
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

from harness.errors import HarnessError

LOCK_WAIT_SECONDS = 30.0

_open_lock = threading.Condition()
_open: dict[str, list] = {}  # path -> [read_only, count]


@contextlib.contextmanager
def connection(path: Path, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``path`` for one job, closed afterwards (no migration: see ``store.connect``)."""
    key = str(path.resolve())
    mode = _register(key, read_only)
    try:
        con = _open_with_retry(path, mode)
        try:
            yield con
        except (duckdb.IOException, duckdb.InternalException, duckdb.SerializationException) as exc:
            # a file that opened but cannot be read (truncated), or a full disk while writing
            raise damaged(path, exc) from None
        finally:
            con.close()
    finally:
        _unregister(key)


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
                raise HarnessError(
                    f"{key}: a read-only connection of this process stayed open "
                    f"for {LOCK_WAIT_SECONDS:g} s; cannot open it for writing"
                )


def _unregister(key: str) -> None:
    with _open_lock:
        held = _open[key]
        held[1] -= 1
        if held[1] == 0:
            del _open[key]
            _open_lock.notify_all()


def _create_atomically(path: Path) -> None:
    """Create an empty database file at ``path`` unless one is there, never half-written.

    DuckDB writes a new file's header after creating it, so a second process opening the path in
    between reads an empty file ("not a valid DuckDB database"). Creating it under a private name
    and linking it into place (a link fails if the name exists) means any file at ``path`` is whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    tmp.unlink(missing_ok=True)
    try:
        duckdb.connect(str(tmp)).close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process or thread created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def _open_with_retry(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    if not path.exists():
        _create_atomically(path)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise damaged(path, exc) from None
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{path}: database is locked by another harness process ({exc})"
                ) from exc
            time.sleep(0.05 + random.random() * 0.2)


def damaged(path: Path, exc: Exception) -> HarnessError:
    """The error for a database file that cannot be read: what is wrong with it, and what to do."""
    from harness.errors import StoreError, disk_full

    if disk_full(exc):
        return StoreError(
            f"{path}: no space left on device while writing the database; free space "
            "and run the command again (the last change was not stored)"
        )
    text = str(exc)
    if "not a valid DuckDB database" in text:
        what = "not a harness database (empty, damaged or another kind of file)"
    elif "read enough bytes" in text or "truncated" in text.lower():
        what = "the database file is truncated or damaged"
    else:
        what = f"the database file cannot be read ({type(exc).__name__})"
    return StoreError(
        f"{path}: {what}; move it away (harness then starts a new, empty one) or "
        "restore it from a copy"
    )
