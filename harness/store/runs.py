"""Runs and their metrics. (Owned by the submit work: replace this placeholder schema.)"""

SCHEMA = "CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY)"
