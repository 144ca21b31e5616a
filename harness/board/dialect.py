"""A board read in another library's metric dialect (``harness leaderboard --dialect X``).

Stored metrics and per-user values are in the harness dialect. Every other dialect changes a
normaliser, a discount, the tie order or who is averaged, which per-user values cannot undo, so
each run's stored lists (parquet in the home) are re-scored against the split's stored truth and
train: no model runs again. What cannot be reproduced is said, not filled in: a run without its
stored lists gets no values, a metric the library does not offer is not shown, and the stored
truth has no repeated pairs (a split keeps each pair once), so the dialects that count repeats
score it as the library would score that deduplicated truth.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from harness.api import Columns
from harness.recs import read_stored_lists


def rescore(
    home: Path, frame: pl.DataFrame, dataset: str, split: str, segment: str, dialect: str
) -> tuple[pl.DataFrame, list[str]]:
    """``frame`` (:func:`harness.store.runs.leaderboard_rows`) with its metric columns replaced by
    ``dialect``'s values in ``segment``, and notices."""
    from harness.metrics import evaluate
    from harness.metrics.dialects import get, offered
    from harness.store.runs import get_run
    from harness.store.splits import load_split

    d = get(dialect)
    stored = [c for c in frame.columns if "@" in c]
    ks = sorted({int(c.split("@")[1]) for c in stored})
    names = sorted({c.split("@")[0] for c in stored})
    notices = []
    lacking = offered(d, names)
    if lacking:
        notices.append(f"dialect {d.name} ({d.library}) has no {', '.join(lacking)}")
    if not frame.height:
        return frame.drop([c for c in stored if c.split("@")[0] not in d.metrics]), notices
    prepared = load_split(home, dataset, split, parts=("train", "truth", "test_users"))
    cold = prepared.part("test_users").filter(pl.col("cold")).get_column(Columns.USER)
    train = prepared.part("train").select(Columns.USER, Columns.ITEM)
    values = []
    for run_id, k in frame.select("run_id", "k").iter_rows():  # one evaluation per run
        run = get_run(home, run_id)
        path = home / run.recs_path if run.recs_path else None
        if path is None or not path.is_file():
            notices.append(f"run {run_id}: stored lists not found, no {d.name} values")
            values.append({"run_id": run_id})
            continue
        run_ks = [x for x in ks if x <= k] or [k]
        evaluation = evaluate(
            read_stored_lists(path),
            prepared.part("truth"),
            ks=run_ks,
            train=train,
            cold_users=cold,
            dialect=d.name,
            source=str(path),
        )
        values.append({"run_id": run_id, **evaluation.metrics.get(segment, {})})
    wide = pl.DataFrame(values, infer_schema_length=None)
    keep = [c for c in wide.columns if c == "run_id" or c.split("@")[0] in names]
    out = frame.drop(stored).join(wide.select(keep), on="run_id", how="left")
    # a stored metric the dialect offers stays a column (null) when no run could be re-scored
    absent = [c for c in stored if c not in out.columns and c.split("@")[0] in d.metrics]
    return out.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in absent), notices
