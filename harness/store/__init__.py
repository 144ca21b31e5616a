"""Storage: the only package that writes SQL for storage.

One DuckDB file in the home directory. Connections are short-lived (open, do one job, close) so
that no command holds the database while a model trains.

- :mod:`harness.store.db`: connections (lock waits, one configuration per file) and transactions.
- :mod:`harness.store.migrations`: the schema, as numbered migrations applied once per process on
  the first write connection (or before the first read of a file whose schema is behind).
- :mod:`harness.store.splits`: prepared splits (train, truth, test users, users, items, metadata).
- :mod:`harness.store.runs`: runs, their metrics per segment and per user.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from harness.config import db_path
from harness.store.db import connection, transaction
from harness.store.migrations import LATEST, migrate

__all__ = ["connect", "transaction"]

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
    if read_only and path.exists() and _identity(path) not in _migrated:
        # the schema is checked on the reading connection itself (an open costs about 20 ms)
        with connection(path, True) as con:
            if _schema_current(con):
                with _migrate_lock:
                    _migrated.add(_identity(path))
                yield con
                return
    if read_only and (not path.exists() or _identity(path) not in _migrated):
        with connect(home):  # missing or behind: create or migrate it, then read
            pass
    with connection(path, read_only) as con:
        if not read_only:
            with _migrate_lock:
                if _identity(path) not in _migrated:
                    migrate(con)
                    _migrated.add(_identity(path))
        yield con


def _schema_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether every migration is applied to the database of ``con``."""
    try:
        return con.sql("SELECT max(version) FROM schema_version").fetchall()[0][0] == LATEST
    except duckdb.CatalogException:  # created a moment ago, not migrated yet
        return False


def _identity(path: Path) -> tuple[str, int]:
    return str(path.resolve()), os.stat(path).st_ino
