"""Id typing rules of recommendation and truth files (DESIGN.md, "Recommendation and truth files").

Ids are compared exactly, never by a lossy cast:

- integer columns are integers; a float column is accepted only when every value is a whole
  number (pandas writes integer ids with nulls as floats), else the first fractional id is an error;
- categorical and enum columns are their strings; any other type (boolean, date, list...) is an error;
- CSV ids are read as strings (:data:`CSV_ID_SCHEMA`): two string columns compare as integers
  only when both hold canonical integers only ("007" is not "7"), else as strings;
- a string column against an integer column (a parquet file, the stored truth, the users asked
  for) is cast to integers when every value is a canonical integer; a value that is not is an
  error naming the row (a fractional number gets its own message), since it cannot match;
- integers that do not fit one Int64 on both sides (UInt64 ids near 2^64) compare as their
  decimal strings, which is exact.

:func:`normalise_ids` applies the per-column rules to one frame, :func:`align_ids` brings a
frame to the id types of a reference (truth or users), :func:`check_overlap` refuses lists whose
users are none of the truth's and notes lists whose items are none of the truth's.
"""

from __future__ import annotations

from typing import cast

import polars as pl

from harness.api import Columns
from harness.errors import ValidationError

USER, ITEM = Columns.USER, Columns.ITEM
ID_COLUMNS = (USER, ITEM)
CSV_ID_SCHEMA = {USER: pl.Utf8, ITEM: pl.Utf8}
_INT = r"^-?(0|[1-9][0-9]*)$"
_FRACTION = r"^[+-]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INT64 = (-(2**63), 2**63 - 1)


def _row(series: pl.Series, mask: pl.Series) -> tuple[int, object]:
    """1-based row number and value of the first row where ``mask`` holds."""
    index = int(mask.arg_true()[0])
    return index + 1, series[index]


def normalise_ids(frame: pl.DataFrame, *, source: str, columns=ID_COLUMNS) -> pl.DataFrame:
    """``frame`` with each id column an integer or string column (see the module rules)."""
    changes = []
    for col in columns:
        if col not in frame.columns:
            continue
        series = frame.get_column(col)
        dtype = series.dtype
        if dtype.is_integer() or dtype == pl.Utf8:
            continue
        if isinstance(dtype, (pl.Categorical, pl.Enum)):
            changes.append(series.cast(pl.Utf8))
        elif dtype.is_float():
            whole = (
                series.is_finite()
                & (series == series.floor())
                & series.is_between(*_INT64, closed="left")
            )
            bad = ~whole.fill_null(True)
            if bad.any():
                row, value = _row(series, bad)
                raise ValidationError(
                    f"{source}: fractional or non-finite {col} {value!r} at row "
                    f"{row}: ids must be integers or strings"
                )
            changes.append(series.cast(pl.Int64))
        else:
            raise ValidationError(
                f"{source}: {col} has type {dtype}; ids must be integers or strings"
            )
    return frame.with_columns(changes) if changes else frame


def _canonical_ints(series: pl.Series) -> bool:
    """Whether every (non-null) string is a canonical integer that fits Int64."""
    values = series.drop_nulls()
    if not values.str.contains(_INT).all():
        return False
    return values.cast(pl.Int64, strict=False).null_count() == 0


def _fits_int64(series: pl.Series) -> bool:
    if series.dtype in (pl.UInt64,) and series.len():
        top = series.max()
        return top is None or cast(int, top) <= _INT64[1]
    return True


def _to_int(series: pl.Series, col: str, source: str, reference: str) -> pl.Series:
    """A string id column as Int64, or an error naming the first value that is not an integer."""
    values = series.str.contains(_INT)
    cast = series.cast(pl.Int64, strict=False)
    bad = (~values | cast.is_null()) & series.is_not_null()
    if bad.any():
        row, value = _row(series, bad)
        kind = "fractional" if _is_fraction(value) else "non-integer"
        raise ValidationError(
            f"{source}: {kind} {col} {value!r} at row {row}: the {col}s of {reference} are "
            f"integers, so it cannot match (ids are compared exactly)"
        )
    return cast


def _is_fraction(value) -> bool:
    return pl.Series([str(value)]).str.contains(_FRACTION).item()


def _check_fractions(series: pl.Series, col: str, source: str, reference: str) -> None:
    """Strings compared against integer-looking strings: a fractional number is an error."""
    frac = series.str.contains(_FRACTION).fill_null(False)
    if frac.any():
        row, value = _row(series, frac)
        raise ValidationError(
            f"{source}: fractional {col} {value!r} at row {row}: the {col}s of "
            f"{reference} are integers (ids are compared exactly)"
        )


def align_column(
    series: pl.Series, ref: pl.Series, *, source: str, reference: str
) -> tuple[pl.Series, pl.Series]:
    """Both id columns in one exact comparison type (module rules); both already normalised."""
    col = series.name
    a_int, b_int = series.dtype.is_integer(), ref.dtype.is_integer()
    if a_int and b_int:
        if _fits_int64(series) and _fits_int64(ref):
            return series.cast(pl.Int64), ref.cast(pl.Int64)
        return series.cast(pl.Utf8), ref.cast(pl.Utf8)
    if a_int:  # a string reference (a CSV truth) against integer lists: compare as text
        if _canonical_ints(ref) and _fits_int64(series):
            return series.cast(pl.Int64), ref.cast(pl.Int64)
        return series.cast(pl.Utf8), ref
    if b_int:
        if not _fits_int64(ref):
            return series, ref.cast(pl.Utf8)
        return _to_int(series, col, source, reference), ref.cast(pl.Int64)
    # two string columns: integers when both are canonical integers, else exact strings
    a_canon, b_canon = _canonical_ints(series), _canonical_ints(ref)
    if a_canon and b_canon:
        return series.cast(pl.Int64), ref.cast(pl.Int64)
    if b_canon and ref.len():
        _check_fractions(series, col, source, reference)
    return series, ref


def align_ids(
    frame: pl.DataFrame,
    reference: pl.DataFrame | pl.Series,
    *,
    source: str,
    against: str = "the truth",
    columns=ID_COLUMNS,
):
    """``frame`` and ``reference`` with their shared id columns in one comparison type.

    ``reference`` is a frame (the truth) or a Series (the user ids asked for; then only
    ``user_id`` is aligned), named ``against`` in messages. Returns the pair, same shapes."""
    frame = normalise_ids(frame, source=source, columns=columns)
    if isinstance(reference, pl.Series):
        ref = normalise_ids(reference.to_frame(USER), source=against, columns=(USER,))
        a, b = align_column(
            frame.get_column(USER), ref.get_column(USER), source=source, reference=against
        )
        return frame.with_columns(a), b.rename(reference.name)
    reference = normalise_ids(reference, source=against, columns=columns)
    left, right = [], []
    for col in columns:
        if col in frame.columns and col in reference.columns:
            a, b = align_column(
                frame.get_column(col), reference.get_column(col), source=source, reference=against
            )
            left.append(a)
            right.append(b)
    return frame.with_columns(left), reference.with_columns(right)


def require_rows(frame: pl.DataFrame, *, source: str, what: str) -> None:
    """An empty truth or list file scores nothing: an error, never a silent 0."""
    if frame.height == 0:
        raise ValidationError(f"{source}: no rows ({what} is empty)")


def check_overlap(recs: pl.DataFrame, truth: pl.DataFrame, *, source: str) -> list[str]:
    """Error when no list user is a truth user (every metric would be 0); a notice (returned)
    when no listed item is a truth item. Ids must be aligned already."""
    users = recs.get_column(USER).unique()
    if users.len() and not users.is_in(truth.get_column(USER).implode()).any():
        raise ValidationError(
            f"{source}: none of the {users.len()} users with lists is a truth user "
            f"(lists: {users.sort().head(1).item()!r}, truth: "
            f"{truth.get_column(USER).sort().head(1).item()!r}, ...): check the user ids"
        )
    items = recs.get_column(ITEM).unique()
    if items.len() and not items.is_in(truth.get_column(ITEM).implode()).any():
        return [
            f"no recommended item is in the truth ({items.len()} distinct listed, e.g. "
            f"{items.sort().head(1).item()!r}): every accuracy metric is 0"
        ]
    return []
