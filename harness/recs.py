"""Reading and validating recommendation and truth files (DESIGN.md, "Recommendation and truth
files"). Everything downstream (metrics, storage) relies on the normalised frame made here:
``user_id, item_id, rank`` with rank 1-based and consecutive per user, no duplicates, no nulls."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from harness.api import Columns
from harness.errors import DataError, ValidationError

USER, ITEM, RANK, SCORE = Columns.USER, Columns.ITEM, "rank", Columns.SCORE
_SHOW = 3  # offending rows named in a message


def read_table(path: Path) -> pl.DataFrame:
    """Read a parquet or CSV file by its extension; DataError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pl.read_csv(path, separator="\t" if suffix == ".tsv" else ",")
    except Exception as exc:  # polars raises many kinds; the message is what matters to the user
        raise DataError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    raise DataError(f"{path}: unknown format {suffix!r} (use .parquet or .csv)")


def _rows(frame: pl.DataFrame, mask: pl.Series) -> str:
    idx = frame.with_row_index("_row").filter(mask).head(_SHOW)
    return ", ".join(f"row {r['_row'] + 1} ({', '.join(f'{k}={r[k]!r}' for k in r if k != '_row')})"
                     for r in idx.iter_rows(named=True))


def _require(frame: pl.DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(f"{source}: missing column(s) {', '.join(missing)} "
                              f"(found: {', '.join(frame.columns) or 'none'})")


def _check_ids(frame: pl.DataFrame, source: str) -> None:
    for col in (USER, ITEM):
        nulls = frame.get_column(col).is_null()
        if nulls.any():
            raise ValidationError(f"{source}: null {col} at {_rows(frame.select(USER, ITEM), nulls)}")


def validate_recommendations(recs: pl.DataFrame, *, source: str, k: int | None = None,
                             users: pl.Series | None = None) -> tuple[pl.DataFrame, dict]:
    """Check a recommendation table and normalise it to ``user_id, item_id, rank[, score]``.

    ``score``: higher first, ties keep input order; else ``rank`` (ties keep input order too).
    Raises ValidationError naming ``source`` and the first offending rows."""
    _require(recs, (USER, ITEM), source)
    if SCORE not in recs.columns and RANK not in recs.columns:
        raise ValidationError(f"{source}: needs a 'score' or a 'rank' column")
    _check_ids(recs, source)
    by = SCORE if SCORE in recs.columns else RANK
    frame = recs.select(USER, ITEM, by)
    if not frame.schema[by].is_numeric():
        raise ValidationError(f"{source}: column {by} must be numeric, not {frame.schema[by]}")
    bad = frame.get_column(by).is_null()
    if frame.schema[by].is_float():
        bad = bad | frame.get_column(by).is_nan()
    if bad.any():
        raise ValidationError(f"{source}: null or NaN {by} at {_rows(frame, bad)}")
    dup = frame.select(pl.struct(USER, ITEM).is_duplicated()).to_series()
    if dup.any():
        raise ValidationError(f"{source}: item listed twice for one user at {_rows(frame, dup)}")
    if users is not None:
        unknown = ~frame.get_column(USER).is_in(users.implode())
        if unknown.any():
            raise ValidationError(f"{source}: users not asked for at {_rows(frame, unknown)}")
    key = pl.col(SCORE) if by == SCORE else pl.col(RANK)
    out = (frame.with_row_index("_order")
           .sort([USER, key, "_order"], descending=[False, by == SCORE, False])
           .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(USER).alias(RANK))
           .select(USER, ITEM, RANK, *([SCORE] if by == SCORE else [])))
    lengths = out.group_by(USER).len()
    if k is not None:
        long = lengths.filter(pl.col("len") > k)
        if long.height:
            shown = ", ".join(f"{u!r} ({n} items)" for u, n in long.head(_SHOW).iter_rows())
            raise ValidationError(f"{source}: more than k={k} items for user(s) {shown}")
    report = {"rows": out.height, "users_with_lists": lengths.height}
    if users is not None:
        report["users_missing"] = int(users.n_unique()) - lengths.height
    if k is not None:
        report["short_lists"] = int((lengths.get_column("len") < k).sum())
    return out, report


def validate_truth(truth: pl.DataFrame, *, source: str) -> pl.DataFrame:
    """Check a truth table (``user_id, item_id``); duplicates collapse, null ids are rejected."""
    _require(truth, (USER, ITEM), source)
    _check_ids(truth, source)
    return truth.select(USER, ITEM).unique(maintain_order=True)
