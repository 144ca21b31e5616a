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


@pytest.mark.parametrize(
    "frame, words",
    [
        (pl.DataFrame({"user_id": [1, 1], "item_id": [5, 5], "score": [1.0, 0.5]}), "row 1"),
        (
            pl.DataFrame({"user_id": [1, None], "item_id": [5, 6], "score": [1.0, 0.5]}),
            "null user_id at row 2",
        ),
        (
            pl.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "score": [1.0, float("nan")]}),
            "NaN score at row 2",
        ),
        (pl.DataFrame({"user_id": [1], "item_id": [5]}), "'score' or a 'rank'"),
        (pl.DataFrame({"user_id": [1], "score": [1.0]}), "missing column(s) item_id"),
    ],
)
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


@pytest.mark.parametrize("order", ["grouped", "shuffled"])
def test_ranks_and_messages_do_not_depend_on_row_order(order):
    """Lists come contiguous and best first (no sort) or in any order (sorted): same result, and
    messages name the rows of the input as given."""
    f = pl.DataFrame(
        {"user_id": [2, 2, 2, 1, 1], "item_id": [7, 8, 9, 7, 8], "score": [3.0, 2.0, 1.5, 5.0, 1.0]}
    )
    if order == "shuffled":
        f = f[[4, 0, 3, 2, 1]]
    out, report = validate_recommendations(f, source="s", k=3)
    got = {(u, i): r for u, i, r in out.select("user_id", "item_id", "rank").iter_rows()}
    assert got == {(2, 7): 1, (2, 8): 2, (2, 9): 3, (1, 7): 1, (1, 8): 2}
    assert report == {"rows": 5, "users_with_lists": 2, "short_lists": 1}
    assert out["user_id"].to_list() in ([2, 2, 2, 1, 1], [1, 1, 2, 2, 2])  # contiguous users
    bad = f.with_columns(
        pl.when(pl.col("item_id") == 9).then(8).otherwise(pl.col("item_id")).alias("item_id")
    )
    rows = [
        i + 1
        for i, (u, it) in enumerate(bad.select("user_id", "item_id").iter_rows())
        if (u, it) == (2, 8)
    ]
    with pytest.raises(ValidationError, match=f"at row {rows[0]} .*row {rows[1]} "):
        validate_recommendations(bad, source="s")
    with pytest.raises(ValidationError) as err:
        validate_recommendations(f, source="s", users=pl.Series([2]))
    named = [i + 1 for i, u in enumerate(f["user_id"].to_list()) if u == 1]
    assert str(err.value).startswith(f"s: users not asked for at row {named[0]} ")


def test_string_ids_and_a_user_in_two_places():
    f = pl.DataFrame({"user_id": ["a", "b", "a"], "item_id": ["x", "x", "y"], "rank": [1, 1, 2]})
    out, _ = validate_recommendations(f, source="s")
    assert out.rows() == [("a", "x", 1), ("a", "y", 2), ("b", "x", 1)]
    with pytest.raises(ValidationError, match="listed twice.*row 1 .*row 3 "):
        validate_recommendations(f.with_columns(pl.lit("x").alias("item_id")), source="s")


@pytest.mark.parametrize("as_str", [False, True])
def test_truth_keeps_order_without_duplicates_and_collapses_them(as_str):
    ids = (lambda xs: [f"u{x}" for x in xs]) if as_str else (lambda xs: xs)
    clean = pl.DataFrame({"user_id": ids([3, 1, 2, 1]), "item_id": [9, 8, 7, 6], "extra": [0] * 4})
    out = validate_truth(clean, source="t")
    assert (
        out.columns == ["user_id", "item_id"]
        and out.rows() == clean.select("user_id", "item_id").rows()
    )
    dup = pl.concat([clean, clean.head(2)])
    assert validate_truth(dup, source="t").rows() == clean.select("user_id", "item_id").rows()
