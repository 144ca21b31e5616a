"""Numbered schema migrations. Append, never edit a released one."""

from __future__ import annotations

import duckdb

from harness.store import runs, splits

# (version, name, SQL). Each module owns the SQL of its own tables.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "splits", splits.SCHEMA),
    (2, "runs", runs.SCHEMA),
    (3, "runs owner", runs.OWNER_SCHEMA),
    (4, "runs sandbox", runs.SANDBOX_SCHEMA),
]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to the latest version; return that version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT now())"
    )
    done = {row[0] for row in con.sql("SELECT version FROM schema_version").fetchall()}
    for version, name, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return MIGRATIONS[-1][0]
