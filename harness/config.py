"""Names and places defined once: environment variables, the home directory and its layout."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "HARNESS_HOME"
ENV_DATASETS = "HARNESS_DATASETS"
# Comma-separated entry-point names to load (default: all); lets tests and users pin a subset.
ENV_PLUGINS = "HARNESS_PLUGINS"

DB_FILENAME = "harness.duckdb"


class Columns:
    """Column names shared by every table the harness reads or writes."""

    USER = "user_id"
    ITEM = "item_id"
    TIMESTAMP = "timestamp"
    WEIGHT = "weight"
    SCORE = "score"
    RANK = "rank"
    CATEGORIES = "categories"


# User segments every metric is reported for, and the metric boards rank by unless told otherwise.
SEGMENTS = ("all", "warm", "cold")
DEFAULT_METRIC = "ndcg@10"


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The home directory: ``--home``, else ``$HARNESS_HOME``, else the platform's user data dir."""
    if explicit:
        home = Path(explicit)
    elif os.environ.get(ENV_HOME):
        home = Path(os.environ[ENV_HOME])
    else:
        import platformdirs

        home = Path(platformdirs.user_data_dir("harness"))
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def db_path(home: Path) -> Path:
    return home / DB_FILENAME


def cache_dir(home: Path) -> Path:
    """Downloaded dataset archives and their unpacked contents."""
    path = home / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(home: Path) -> Path:
    """Recommendation lists of stored runs, one parquet file per run."""
    path = home / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


# The longest list a run may ask for and the largest cut-off `score` computes: memory of
# validation and scoring grows with k, and no recommender evaluation needs longer lists.
MAX_K = 10_000
