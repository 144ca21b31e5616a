"""Recommendation and truth validation: bad rows are named."""

import polars as pl
import pytest

from harness.errors import DataError, ValidationError
from harness.recs import read_table, validate_recommendations, validate_truth


def test_ties_keep_input_order_and_rank_given():
    f = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [7, 8, 9], "score": [1.0, 2.0, 2.0]})
    out, report = validate_recommendations(f, source="r.csv", k=5)
    assert out["item_id"].to_list() == [8, 9, 7] and out["rank"].to_list() == [1, 2, 3]
    assert report["short_lists"] == 1
    g = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"], "rank": [2, 1]})
    assert validate_recommendations(g, source="r")[0]["item_id"].to_list() == ["y", "x"]


@pytest.mark.parametrize("frame, words", [
    (pl.DataFrame({"user_id": [1, 1], "item_id": [5, 5], "score": [1.0, 0.5]}), "row 1"),
    (pl.DataFrame({"user_id": [1, None], "item_id": [5, 6], "score": [1.0, 0.5]}), "null user_id at row 2"),
    (pl.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "score": [1.0, float("nan")]}), "NaN score at row 2"),
    (pl.DataFrame({"user_id": [1], "item_id": [5]}), "'score' or a 'rank'"),
    (pl.DataFrame({"user_id": [1], "score": [1.0]}), "missing column(s) item_id"),
])
def test_rejected(frame, words):
    with pytest.raises(ValidationError, match="recs.parquet") as err:
        validate_recommendations(frame, source="recs.parquet")
    assert words in str(err.value)


def test_k_and_users():
    f = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 6, 5], "score": [1.0, 0.5, 1.0]})
    with pytest.raises(ValidationError, match="more than k=1"):
        validate_recommendations(f, source="s", k=1)
    with pytest.raises(ValidationError, match="users not asked for at row 3"):
        validate_recommendations(f, source="s", users=pl.Series([1]))


def test_truth_and_read_table(tmp_path):
    with pytest.raises(ValidationError, match="null item_id"):
        validate_truth(pl.DataFrame({"user_id": [1], "item_id": [None]}), source="t")
    p = tmp_path / "t.csv"
    p.write_text("user_id,item_id\n1,2\n1,2\n")
    assert validate_truth(read_table(p), source=str(p)).height == 1
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="unknown format"):
        read_table(p.rename(tmp_path / "t.txt"))
