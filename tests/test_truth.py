"""The compact truth the scorer holds (harness.metrics.Truth): the same pairs as the frame it is
made of, grouped by user, items in the narrowest integer type, frames rebuilt with the types as
given; scoring with it gives exactly the numbers of scoring with the frame."""

import numpy as np
import polars as pl
import pytest
from test_scoring_chunks import KS, _random_case

from harness.metrics import Truth
from harness.scoring import score_lists


def _frame(users, items, dtype=pl.Int64):
    return pl.DataFrame(
        {"user_id": pl.Series(users, dtype=dtype), "item_id": pl.Series(items, dtype=dtype)}
    )


def test_pairs_grouped_by_sorted_user_repeats_collapsed():
    truth = Truth.of(_frame([3, 1, 3, 2, 1, 3], [30, 10, 31, 20, 10, 30]))
    assert truth.users.to_list() == [1, 2, 3]
    assert truth.starts.tolist() == [0, 1, 2, 4]
    assert truth.frame().rows() == [(1, 10), (2, 20), (3, 30), (3, 31)]
    # any order of users, and runs that are not consecutive positions
    assert truth.rows(np.array([2, 0])).rows() == [(3, 30), (3, 31), (1, 10)]
    assert truth.rows(np.array([1, 2])).rows() == [(2, 20), (3, 30), (3, 31)]
    assert truth.rows(np.array([], dtype=np.int64)).height == 0


@pytest.mark.parametrize(
    ("items", "stored"),
    [
        ([0, 100], pl.Int8),
        ([0, 200], pl.UInt8),
        ([-5, 20_000], pl.Int16),
        ([0, 60_000], pl.UInt16),
        ([-1, 2**31 - 1], pl.Int32),
        ([-1, 2**40], pl.Int64),
    ],
)
def test_items_stored_narrow_and_given_back_in_their_type(items, stored):
    truth = Truth.of(_frame([1, 2], items))
    assert truth.items.dtype == stored
    frame = truth.frame()
    assert frame.schema == {"user_id": pl.Int64, "item_id": pl.Int64}
    assert frame.get_column("item_id").to_list() == items
    assert truth.empty().schema == frame.schema
    bounds = truth.bounds()
    assert bounds.schema == frame.schema
    assert bounds.get_column("item_id").to_list() == items


def test_cast_widens_in_place_or_rebuilds_in_the_new_order():
    truth = Truth.of(_frame([9, 10, 10], [1, 2, 3], dtype=pl.Int32))
    wide = truth.cast({"user_id": pl.Int64, "item_id": pl.Int64})
    assert wide.items is truth.items  # only the types change
    assert wide.frame().schema == {"user_id": pl.Int64, "item_id": pl.Int64}
    text = truth.cast({"user_id": pl.Utf8, "item_id": pl.Utf8})
    assert text.users.to_list() == ["10", "9"]  # sorted again, as text
    assert text.frame().rows() == [("10", "2"), ("10", "3"), ("9", "1")]
    assert truth.cast(truth.schema) is truth


def test_string_ids_kept_as_they_are():
    truth = Truth.of(pl.DataFrame({"user_id": ["b", "a", "b"], "item_id": ["x", "y", "x"]}))
    assert not truth.packable
    assert truth.frame().rows() == [("a", "y"), ("b", "x")]


@pytest.mark.parametrize("as_str", [False, True])
def test_scoring_with_the_compact_truth_equals_scoring_with_the_frame(as_str):
    recs, truth, train, cats = _random_case(7, as_str=as_str)
    options = dict(ks=KS, train=train, item_categories=cats, chunk_rows=13)
    by_frame = score_lists(recs, truth, **options).evaluation
    by_truth = score_lists(recs, Truth.of(truth), **options).evaluation
    assert by_truth.metrics == by_frame.metrics
    assert by_truth.per_user.equals(by_frame.per_user)


def _same(a: Truth, b: Truth) -> None:
    assert a.users.equals(b.users) and a.users.dtype == b.users.dtype
    assert a.starts.tolist() == b.starts.tolist()
    assert a.items.equals(b.items) and a.items.dtype == b.items.dtype
    assert a.item_dtype == b.item_dtype


@pytest.mark.parametrize("batch", [1, 3, 1000])
@pytest.mark.parametrize("dtype", [pl.Int32, pl.Int64, pl.UInt16])
def test_read_in_batches_equals_the_frame(tmp_path, monkeypatch, batch, dtype):
    """A user's run cut by a batch boundary stays one user; the types are those of the file."""
    import harness.metrics.relevant as truth_module

    monkeypatch.setattr(truth_module, "READ_ROWS", batch)
    frame = _frame([1, 1, 1, 4, 4, 9, 12, 12, 12, 12], [5, 3, 9, 1, 300, 2, 7, 6, 5, 4], dtype)
    frame.write_parquet(tmp_path / "t.parquet")
    read = Truth.read(tmp_path / "t.parquet")
    assert read is not None
    _same(read, Truth.of(frame))


@pytest.mark.parametrize(
    "frame",
    [
        _frame([2, 1], [1, 1]),  # not grouped by ascending user
        _frame([1, 2, 1], [1, 1, 2]),  # a user in two places
        _frame([1, 1], [3, 3]),  # a repeated pair
        _frame([1, None], [3, 4]),  # a null id
        _frame([], []),  # no rows
        pl.DataFrame({"user_id": ["a"], "item_id": ["b"]}),  # not integers
        pl.DataFrame({"user_id": [1], "item": [2]}),  # no item_id
    ],
)
def test_read_leaves_other_files_to_the_validation(tmp_path, frame):
    """None: validate_truth then reads the file whole and names the offending rows."""
    frame.write_parquet(tmp_path / "t.parquet")
    assert Truth.read(tmp_path / "t.parquet") is None


def test_read_takes_parquet_files_only(tmp_path):
    _frame([1], [2]).write_csv(tmp_path / "t.csv")
    assert Truth.read(tmp_path / "t.csv") is None
    assert Truth.read(tmp_path / "missing.parquet") is None
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    assert Truth.read(tmp_path / "bad.parquet") is None
