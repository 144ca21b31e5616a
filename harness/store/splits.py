"""Prepared splits. (Owned by the datasets work: replace this placeholder schema.)"""

SCHEMA = "CREATE TABLE IF NOT EXISTS splits (split_id VARCHAR PRIMARY KEY)"
