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
