"""Frames handed to the Python API: polars as is, pandas converted without making pandas a
dependency (it is only touched when the caller passed a pandas object, so it is already imported).

A conversion never guesses: an id held in the index instead of a column, or an object column
mixing Python types, is an error naming the frame and the column, not a silent cast.
"""

from __future__ import annotations

import sys
from typing import Any

import polars as pl

from harness.errors import DataError


def is_pandas(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "pandas"


def to_polars(frame: Any, *, name: str, required: tuple[str, ...] = ()) -> pl.DataFrame:
    """``frame`` (polars DataFrame/LazyFrame or pandas DataFrame) as a polars DataFrame.

    ``name`` is how errors call the frame (``recs``, ``truth``); ``required`` columns must be
    columns, not index levels."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if isinstance(frame, pl.DataFrame):
        _require(name, list(frame.columns), required)
        return frame
    if is_pandas(frame) and hasattr(frame, "columns"):
        return _from_pandas(frame, name=name, required=required)
    raise DataError(f"{name}: expected a polars or pandas DataFrame, got {type(frame).__name__}")


def _require(
    name: str, columns: list[str], required: tuple[str, ...], index: list[str] | None = None
) -> None:
    missing = [c for c in required if c not in columns]
    if not missing:
        return
    in_index = [c for c in missing if index and c in index]
    if in_index:
        raise DataError(
            f"{name}: {', '.join(in_index)} is in the frame's index, not a column; "
            f"call .reset_index() first"
        )
    raise DataError(
        f"{name}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, columns))}"
    )


def _from_pandas(frame: Any, *, name: str, required: tuple[str, ...]) -> pl.DataFrame:
    pandas = sys.modules["pandas"]
    columns = [str(c) for c in frame.columns]
    index = [str(n) for n in frame.index.names if n is not None]
    _require(name, columns, required, index)
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object:
            kind = pandas.api.types.infer_dtype(series, skipna=True)
            if kind.startswith("mixed") or kind in ("decimal", "bytes"):
                types = sorted({type(v).__name__ for v in series.dropna().head(1000)})
                raise DataError(
                    f"{name}: column {column!r} holds mixed Python types "
                    f"({', '.join(types)}); cast it to one type (e.g. .astype(str))"
                )
    try:
        return pl.from_pandas(frame, include_index=False)
    except Exception as exc:  # pyarrow's conversion errors name the value, not the column
        raise DataError(f"{name}: cannot convert the pandas frame: {exc}") from exc


# polars types a scalar (``Series.min()``, ``DataFrame.item()``) as the union of every Python value
# a column can hold; these narrow it where the column's type fixes the kind (a bug of ours if not).


def as_int(value: object) -> int:
    """``value`` (a scalar read from an integer column) as an ``int``."""
    if not isinstance(value, int):
        raise TypeError(f"expected an integer scalar, got {type(value).__name__}")
    return value


def as_float(value: object) -> float:
    """``value`` (a scalar read from a numeric column) as a ``float``."""
    if not isinstance(value, (int, float)):
        raise TypeError(f"expected a numeric scalar, got {type(value).__name__}")
    return float(value)
