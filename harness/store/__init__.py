"""Storage: the only package that writes SQL for storage.

One DuckDB file in the home directory. Connections are short-lived (open, do one job, close) so
that no command holds the database while a model trains; a second process that finds the file
locked retries for a while instead of failing at once (DuckDB does not wait on its own).

- :mod:`harness.store.migrations`: numbered schema migrations, applied on every write connection.
- :mod:`harness.store.splits`: prepared splits (train, truth, test users, users, items, metadata).
- :mod:`harness.store.runs`: runs, their metrics per segment and per user.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from harness.config import db_path
from harness.errors import HarnessError

LOCK_WAIT_SECONDS = 30.0


@contextlib.contextmanager
def connect(home: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the home's database for one job; migrate it first when opened for writing.

    A read-only open of a database that does not exist yet creates and migrates it first, so
    readers never see a missing schema.
    """
    path = db_path(home)
    if read_only and not path.exists():
        with connect(home):
            pass
    con = _open_with_retry(path, read_only)
    try:
        if not read_only:
            from harness.store.migrations import migrate

            migrate(con)
        yield con
    finally:
        con.close()


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
