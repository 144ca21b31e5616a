"""The schema, as numbered migrations: the only place that creates or alters storage tables.

Append a migration, never edit a released one. Each runs in one transaction with its row in
``schema_version``.
"""

from __future__ import annotations

import duckdb

from harness.store.db import transaction

# (version, name, SQL)
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "splits",
        """
DROP TABLE IF EXISTS splits;
CREATE TABLE splits (
    dataset     VARCHAR NOT NULL,
    split       VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    protocol    VARCHAR NOT NULL,      -- JSON
    cutoff      TIMESTAMP,
    info        VARCHAR NOT NULL,      -- JSON
    is_default  BOOLEAN NOT NULL,
    prefix      VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, split)
);
""",
    ),
    (
        2,
        "runs",
        """
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY,
    recommender VARCHAR NOT NULL,
    parameters VARCHAR NOT NULL,          -- JSON object of the -p strings
    seed INTEGER,
    k INTEGER,
    dataset VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,
    harness_version VARCHAR,
    plugin_distribution VARCHAR,
    plugin_version VARCHAR,
    baseline BOOLEAN DEFAULT false,       -- shipped with harness (baselines package)
    python VARCHAR,
    platform VARCHAR,
    started_at TIMESTAMP,
    ended_at TIMESTAMP,
    fit_seconds DOUBLE,
    recommend_seconds DOUBLE,
    peak_memory_bytes BIGINT,             -- worker's peak resident set size
    status VARCHAR NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'aborted')),
    error VARCHAR,
    stderr_tail VARCHAR,
    external BOOLEAN DEFAULT false,       -- lists produced elsewhere, scored by `harness score`
    recs_path VARCHAR,                    -- relative to the home directory
    report VARCHAR,                       -- JSON: validation report and metric notices
    user_metric_names VARCHAR[]           -- names of the run_user_metrics.metric_values entries
);
CREATE TABLE run_metrics (
    run_id VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    PRIMARY KEY (run_id, segment, metric)
);
-- one row per (run, user): the values in the order of runs.user_metric_names (a long
-- (user, metric) layout costs 30x the rows: 46 s to store 1M users x 30 metrics, this ~2 s)
CREATE TABLE run_user_metrics (
    run_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    metric_values DOUBLE[] NOT NULL
);
""",
    ),
    (
        3,
        "runs owner",
        """
ALTER TABLE runs ADD COLUMN pid INTEGER;    -- the submitting process
ALTER TABLE runs ADD COLUMN host VARCHAR;
""",
    ),
    (
        4,
        "runs sandbox",
        """
ALTER TABLE runs ADD COLUMN sandbox VARCHAR;  -- how the worker was isolated: bwrap or none (NULL: external)
UPDATE runs SET sandbox = 'none' WHERE NOT external;  -- runs stored before the sandbox had none
""",
    ),
    (
        5,
        "runs tags and note",
        """
ALTER TABLE runs ADD COLUMN tags VARCHAR[];   -- --tag, validated by harness.labels (NULL: none)
ALTER TABLE runs ADD COLUMN note VARCHAR;     -- --note: one line of text
""",
    ),
    (
        6,
        "per-user values in a file per run",
        """
-- the per-user values of a run stored from now on: a parquet file (relative to the home) with
-- user_id, segment and one column per runs.user_metric_names entry; NULL: the run's values are
-- rows of run_user_metrics (runs stored before; still read from there)
ALTER TABLE runs ADD COLUMN user_values_path VARCHAR;
""",
    ),
]
LATEST = MIGRATIONS[-1][0]


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema to the latest version; return that version."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT now())"
    )
    done = {row[0] for row in con.sql("SELECT version FROM schema_version").fetchall()}
    for version, name, sql in MIGRATIONS:
        if version not in done:
            with transaction(con):
                con.execute(sql)
                con.execute(
                    "INSERT INTO schema_version (version, name) VALUES (?, ?)", [version, name]
                )
    return LATEST
