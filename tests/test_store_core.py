"""The store core: migrations, transactions, read-only opens, lock retries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness import store
from harness.store.migrations import MIGRATIONS


def test_migrations_apply_once_and_record_versions(home):
    with store.connect(home) as con:
        versions = [
            r[0] for r in con.sql("SELECT version FROM schema_version ORDER BY 1").fetchall()
        ]
    with store.connect(home) as con:  # second open applies nothing new
        again = [r[0] for r in con.sql("SELECT version FROM schema_version ORDER BY 1").fetchall()]
    assert versions == again == [m[0] for m in MIGRATIONS]


def test_read_only_open_of_a_new_home_creates_the_schema(home):
    with store.connect(home, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM schema_version").fetchall()[0][0] == len(MIGRATIONS)


def test_a_read_only_open_migrates_a_schema_behind_and_reads_a_current_one_in_one_open(
    home, monkeypatch
):
    """A file written by an older harness (one migration missing) is migrated before it is read;
    a current file another process made is checked on the reading connection itself."""
    import duckdb

    from harness.store import db

    path = home / "harness.duckdb"
    con = duckdb.connect(str(path))
    monkeypatch.setattr("harness.store.migrations.MIGRATIONS", MIGRATIONS[:-1])
    store.migrations.migrate(con)
    con.close()
    monkeypatch.undo()
    opens = []
    real_open = db._open_with_retry
    monkeypatch.setattr(db, "_open_with_retry", lambda *a: opens.append(a[1]) or real_open(*a))
    with store.connect(home, read_only=True) as con:
        versions = con.sql("SELECT count(*) FROM schema_version").fetchall()[0][0]
    assert versions == len(MIGRATIONS) and opens == [True, False, True]  # read, migrate, read
    monkeypatch.setattr(store, "_migrated", set())  # as in a process that has not opened it
    opens.clear()
    with store.connect(home, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM runs").fetchall() == [(0,)]
    assert opens == [True]


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


def test_unknown_run_fields_are_an_error_not_dropped(home):
    from harness.store import runs

    with pytest.raises(TypeError, match="fit_secs"):
        runs.Run(run_id="r", recommender="x", dataset="d", split="s", fingerprint="f", fit_secs=1.0)
    runs.create_run(
        home, runs.Run(run_id="r", recommender="x", dataset="d", split="s", fingerprint="f")
    )
    with pytest.raises(TypeError, match="unknown run field.*fit_secs"):
        runs.finish_run(
            home, "r", metrics={"all": {"ndcg@10": 0.5}}, per_user=None, fields={"fit_secs": 1.0}
        )
    with pytest.raises(TypeError, match="unknown run field.*tag_typo"):
        runs.mark_run(home, "r", "failed", error="x", tag_typo="y")
    run = runs.get_run(home, "r")  # both writes rolled back: still running, no metrics
    assert (run.status, run.metrics, run.fit_seconds) == ("running", {}, None)
