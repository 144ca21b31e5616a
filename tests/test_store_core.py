"""The store core: migrations, transactions, read-only opens, lock retries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import store
from harness.store.migrations import MIGRATIONS


def test_migrations_apply_once_and_record_versions(home):
    with store.connect(home) as con:
        versions = [r[0] for r in con.sql("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    with store.connect(home) as con:  # second open applies nothing new
        again = [r[0] for r in con.sql("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    assert versions == again == [m[0] for m in MIGRATIONS]


def test_read_only_open_of_a_new_home_creates_the_schema(home):
    with store.connect(home, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM schema_version").fetchall()[0][0] == len(MIGRATIONS)


def test_transaction_rolls_back_on_error(home):
    with store.connect(home) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError):
            with store.transaction(con):
                con.execute("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")
        with store.transaction(con):
            con.execute("INSERT INTO t VALUES (2)")
        assert con.sql("SELECT x FROM t").fetchall() == [(2,)]


def test_a_second_process_waits_for_the_lock_instead_of_failing(home):
    """DuckDB refuses a locked file at once; connect() retries until the holder lets go."""
    with store.connect(home):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(1.5); c.close()",
            str(home / "harness.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with store.connect(home, read_only=True) as con:
        assert con.sql("SELECT 1").fetchall() == [(1,)]
    holder.wait(timeout=10)
