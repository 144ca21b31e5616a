"""The split store: round trip with id types kept, replacement, and atomicity."""

from datetime import datetime

import duckdb
import polars as pl
import pytest

from harness.store.splits import PreparedSplit, list_splits, load_split, save_split, split_meta


def make(split="s", ids=("a", "b"), fingerprint="f1", default=True):
    train = pl.DataFrame(
        {
            "user_id": list(ids),
            "item_id": [1, 2],
            "timestamp": [datetime(2020, 1, 1), None],
            "weight": pl.Series([1.0, 2.0], dtype=pl.Float32),
        }
    )
    return PreparedSplit(
        dataset="d",
        split=split,
        fingerprint=fingerprint,
        protocol={"protocol": "random"},
        cutoff=datetime(2020, 1, 2),
        train=train,
        truth=pl.DataFrame({"user_id": [ids[0]], "item_id": [3]}),
        test_users=pl.DataFrame({"user_id": [ids[0]], "cold": [False]}),
        users=None,
        items=pl.DataFrame({"item_id": [1], "categories": [["x", "y"]]}),
        info={"is_default": default, "train_rows": 2},
    )


def test_round_trip_keeps_types(home):
    save_split(home, make())
    s = load_split(home, "d")
    assert s.train["user_id"].dtype == pl.Utf8 and s.train["weight"].dtype == pl.Float32
    assert s.train.sort("item_id")["timestamp"].to_list() == [datetime(2020, 1, 1), None]
    assert s.items["categories"].to_list() == [["x", "y"]]
    assert s.users is None and s.cutoff == datetime(2020, 1, 2)
    assert s.protocol == {"protocol": "random"} and s.info["train_rows"] == 2
    partial = load_split(home, "d", parts=["truth"])
    assert partial.train is None and partial.truth.rows() == [("a", 3)]


def test_replace_changes_id_type_and_default(home):
    save_split(home, make())
    save_split(home, make(ids=(7, 8), fingerprint="f2"))
    s = load_split(home, "d", "s")
    assert s.train["user_id"].dtype == pl.Int64 and s.fingerprint == "f2"
    save_split(home, make(split="t", default=True))
    assert split_meta(home, "d")["split"] == "t"
    assert [(m["split"], m["is_default"]) for m in list_splits(home)] == [("s", False), ("t", True)]


def test_failed_save_leaves_previous_version(home):
    save_split(home, make(fingerprint="good"))
    broken = make(fingerprint="bad")
    broken.items = object()  # not a frame: fails after train and truth were written
    with pytest.raises(duckdb.InvalidInputException, match="not suitable"):
        save_split(home, broken)
    s = load_split(home, "d")
    assert s.fingerprint == "good" and s.train["user_id"].dtype == pl.Utf8
    assert s.items["categories"].to_list() == [["x", "y"]]
