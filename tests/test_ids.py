"""Id typing (DESIGN.md "Recommendation and truth files"): ids are compared exactly; CSV ids are
strings unless both files agree on integers; a fractional id, an id type that cannot match, an
empty truth and an empty list file are errors, never a silent score."""

from __future__ import annotations

import json

import polars as pl
import pytest

from harness.errors import ValidationError


def _score(cli, recs, truth, *ks, expect=0):
    args = ["score", "--recs", str(recs), "--truth", str(truth), "--json"]
    for k in ks:
        args += ["--k", str(k)]
    return cli(*args, expect=expect)


def _one_error(result, *words):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def test_csv_leading_zeros_are_not_collapsed(cli, tmp_path):
    # the example: "007" and "7" are two items, "0042" is not "42"
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\nA,007\nA,7\nB,0042\n")
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\nA,7,1\nA,8,.5\nB,42,1\n")
    out = json.loads(_score(cli, recs, truth, 1).stdout)
    # A: "7" is one of its two relevant items (1/2); B: "42" is not "0042" (0)
    assert out["metrics"]["recall@1"] == pytest.approx(0.25)


def test_csv_ids_agreeing_on_integers_compare_as_integers(cli, tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\n1,10\n2,20\n")
    recs = tmp_path / "r.parquet"  # integer parquet against integer-looking CSV
    pl.DataFrame({"user_id": [1, 2], "item_id": [10, 21], "score": [1.0, 1.0]}).write_parquet(recs)
    out = json.loads(_score(cli, recs, truth, 1).stdout)
    assert out["metrics"]["hit_rate@1"] == pytest.approx(0.5)


def test_fractional_item_id_is_an_error_naming_the_row(cli, tmp_path):
    truth = tmp_path / "t.parquet"
    pl.DataFrame({"user_id": [1, 1], "item_id": [318, 50]}).write_parquet(truth)
    recs = tmp_path / "r.parquet"
    pl.DataFrame({"user_id": [1, 1], "item_id": [318.0, 318.5], "score": [2.0, 1.0]}).write_parquet(
        recs
    )
    _one_error(_score(cli, recs, truth, 1, expect=1), "fractional", "item_id", "row 2", "318.5")


def test_fractional_id_in_csv_against_integer_ids_is_an_error(cli, tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\n1,318\n")
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\n1,318.5,1\n")
    _one_error(_score(cli, recs, truth, 1, expect=1), "fractional", "318.5")


def test_integral_float_ids_are_integers(cli, tmp_path):
    truth = tmp_path / "t.parquet"
    pl.DataFrame({"user_id": [1], "item_id": [318]}).write_parquet(truth)
    recs = tmp_path / "r.parquet"
    pl.DataFrame({"user_id": [1.0], "item_id": [318.0], "score": [1.0]}).write_parquet(recs)
    assert json.loads(_score(cli, recs, truth, 1).stdout)["metrics"]["hit_rate@1"] == 1.0


def test_string_items_against_integer_truth_cannot_match(cli, tmp_path):
    truth = tmp_path / "t.parquet"
    pl.DataFrame({"user_id": [1], "item_id": [7]}).write_parquet(truth)
    recs = tmp_path / "r.parquet"
    pl.DataFrame({"user_id": [1], "item_id": ["i7"], "score": [1.0]}).write_parquet(recs)
    _one_error(_score(cli, recs, truth, 1, expect=1), "item_id", "'i7'", "integer")


def test_users_matching_no_truth_user_are_an_error(cli, tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\n1,10\n2,20\n")
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\nu1,10,1\nu2,20,1\n")
    _one_error(_score(cli, recs, truth, 1, expect=1), "none of the 2 users", "'u1'")


def test_items_matching_no_truth_item_get_a_notice(cli, tmp_path):
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\n1,a\n")
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\n1,b,1\n")
    result = cli("score", "--recs", str(recs), "--truth", str(truth), "--k", "1")
    assert "no recommended item is in the truth" in result.stdout


def test_empty_truth_and_empty_lists_are_errors(cli, tmp_path):
    empty_truth = tmp_path / "t.csv"
    empty_truth.write_text("user_id,item_id\n")
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\n1,10,1\n")
    _one_error(_score(cli, recs, empty_truth, 1, expect=1), str(empty_truth), "no rows")
    truth = tmp_path / "t2.csv"
    truth.write_text("user_id,item_id\n1,10\n")
    empty_recs = tmp_path / "r2.csv"
    empty_recs.write_text("user_id,item_id,score\n")
    _one_error(_score(cli, empty_recs, truth, 1, expect=1), str(empty_recs), "no rows")


def test_uint64_ids_near_the_top_compare_exactly():
    from harness.ids import align_ids

    top = 2**64 - 1
    truth = pl.DataFrame(
        {
            "user_id": pl.Series([top, 5], dtype=pl.UInt64),
            "item_id": pl.Series([top - 1, 3], dtype=pl.UInt64),
        }
    )
    recs = pl.DataFrame({"user_id": [5, 5], "item_id": [3, -1]})  # Int64: -1 matches nothing
    recs, truth = align_ids(recs, truth, source="r", against="t")
    assert recs.schema == truth.schema
    assert truth.get_column("item_id").to_list()[0] == str(top - 1)
    assert recs.get_column("item_id").to_list() == ["3", "-1"]


def test_uint64_scoring_does_not_crash(cli, tmp_path):
    top = 2**64 - 1
    truth = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "user_id": pl.Series([top], dtype=pl.UInt64),
            "item_id": pl.Series([top - 1], dtype=pl.UInt64),
        }
    ).write_parquet(truth)
    recs = tmp_path / "r.parquet"
    pl.DataFrame(
        {
            "user_id": pl.Series([top], dtype=pl.UInt64),
            "item_id": pl.Series(
                [
                    top - 1,
                ],
                dtype=pl.UInt64,
            ),
            "score": [1.0],
        }
    ).write_parquet(recs)
    assert json.loads(_score(cli, recs, truth, 1).stdout)["metrics"]["hit_rate@1"] == 1.0


@pytest.mark.parametrize(
    "values, dtype, ok",
    [
        ([1.0, 2.0], pl.Float64, [1, 2]),
        ([1.5], pl.Float64, None),
        ([float("inf")], pl.Float64, None),
        (["a", "b"], pl.Categorical, ["a", "b"]),
        ([True], pl.Boolean, None),
    ],
)
def test_normalise_ids(values, dtype, ok):
    from harness.ids import normalise_ids

    frame = pl.DataFrame({"user_id": pl.Series(values, dtype=dtype), "item_id": [1] * len(values)})
    if ok is None:
        with pytest.raises(ValidationError, match="user_id"):
            normalise_ids(frame, source="f")
    else:
        assert normalise_ids(frame, source="f").get_column("user_id").to_list() == ok


TYPED = """
import polars as pl
class Model:
    def __init__(self, how: str = "str"):
        self.how = how
    def fit(self, data):
        self.top = data.interactions.group_by("item_id").len().sort(
            ["len", "item_id"], descending=[True, False])["item_id"].head(2)
    def recommend(self, users, k):
        recs = (pl.DataFrame({"user_id": users}).join(pl.DataFrame({"item_id": self.top}), how="cross")
                .with_columns(score=-pl.int_range(pl.len()).over("user_id").cast(pl.Float64)))
        if self.how == "str":
            return recs.with_columns(pl.col("user_id").cast(pl.Utf8))
        if self.how == "float":
            return recs.with_columns(pl.col("user_id").cast(pl.Float64))
        if self.how == "half":
            return recs.with_columns(pl.col("user_id").cast(pl.Float64) + 0.5)
        return recs.with_columns(("i" + pl.col("item_id").cast(pl.Utf8)).alias("item_id"))
"""


@pytest.mark.parametrize(
    "how, error", [("str", None), ("float", None), ("half", "fractional"), ("item", "item_id")]
)
def test_plugin_id_types(home, register_plugins, how, error):
    """String or whole-float user ids from a plugin are the users asked for; a fractional user
    id or string item ids against integer items fail the run with a message, not a traceback."""
    from harness.datasets import prepare
    from harness.errors import RunError
    from harness.runner import submit
    from harness.store.runs import list_runs

    prepare("synthetic-small", home=home)
    register_plugins({"typed": TYPED})
    if error is None:
        run = submit(home, "typed", dataset="synthetic-small", params={"how": how}, k=2)
        assert run.status == "ok" and run.report["validation"]["users_missing"] == 0
    else:
        with pytest.raises(RunError, match=error):
            submit(home, "typed", dataset="synthetic-small", params={"how": how}, k=2)
        assert [r.status for r in list_runs(home)] == ["failed"]
