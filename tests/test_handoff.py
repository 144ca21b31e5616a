"""What the worker may see: the training part, and feature rows only for what exists at the cutoff."""

from __future__ import annotations

# Fails the run when a feature row names an item without train interactions, or a user that is
# neither in train nor asked for; otherwise recommends one item to one user (an empty output is an
# error; users without lists are allowed).
SPY = """
import polars as pl

class Model:
    def fit(self, data):
        seen = set(data.interactions["item_id"].to_list())
        unknown = set(data.items["item_id"].to_list()) - seen
        if unknown:
            raise RuntimeError(f"{len(unknown)} items in data.items have no train interaction")
        self.item = data.interactions["item_id"][0]
        return self

    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users.head(1), "item_id": [self.item], "score": [1.0]})
"""


def test_worker_gets_item_features_only_for_items_known_at_the_cutoff(
    home, embedded, register_plugins
):
    from harness.runner import submit
    from harness.store.splits import load_split

    stored = load_split(home, "ml-latest-small", parts=("train", "items"))
    later = stored.items.join(stored.train.select("item_id").unique(), on="item_id", how="anti")
    assert later.height > 100  # films first rated after the cutoff exist in movies.csv

    register_plugins({"spy": SPY})
    run = submit(home, "spy", dataset="ml-latest-small", k=10)
    assert run.status == "ok"
    assert run.report["validation"]["users_with_lists"] == 1


def test_export_split_writes_the_worker_files_from_the_store(home, tmp_path):
    """train whole, the test users, and feature rows of known users and items only, in stored
    order, exactly as the frames would be filtered; a split prepared again in between is refused."""
    import dataclasses

    import polars as pl
    import pytest
    from polars.testing import assert_frame_equal

    from harness.datasets import prepare
    from harness.errors import ConfigError
    from harness.store.splits import export_split, load_split, save_split

    prepare("synthetic-small", home=home)
    base = load_split(home, "synthetic-small")
    # feature rows of a user and an item that appear nowhere, first and last
    ghost_user = base.users.head(1).with_columns(
        pl.lit(10**9, dtype=base.users.schema["user_id"]).alias("user_id")
    )
    ghost_item = base.items.head(1).with_columns(
        pl.lit(10**9, dtype=base.items.schema["item_id"]).alias("item_id")
    )
    users = pl.concat(
        [
            ghost_user,
            base.users,
            ghost_user.with_columns(
                pl.lit(10**9 + 1, dtype=base.users.schema["user_id"]).alias("user_id")
            ),
        ]
    )
    items = pl.concat([ghost_item, base.items.reverse()])
    save_split(home, dataclasses.replace(base, dataset="mine", users=users, items=items))
    split = load_split(home, "mine", base.split)

    export_split(home, split, tmp_path)

    assert_frame_equal(pl.read_parquet(tmp_path / "train.parquet"), base.train)
    assert_frame_equal(
        pl.read_parquet(tmp_path / "test_users.parquet"), base.test_users.select("user_id")
    )
    known_users = pl.concat([base.train["user_id"], base.test_users["user_id"]]).unique()
    exported_users = pl.read_parquet(tmp_path / "users.parquet")
    assert_frame_equal(exported_users, users.filter(pl.col("user_id").is_in(known_users.implode())))
    assert exported_users.height == base.users.height  # the two ghosts are gone, order kept
    exported_items = pl.read_parquet(tmp_path / "items.parquet")
    assert_frame_equal(
        exported_items, items.filter(pl.col("item_id").is_in(base.train["item_id"].implode()))
    )
    assert exported_items["item_id"].to_list() == base.items["item_id"].reverse().to_list()

    # a split prepared before the feature rows were kept filtered: filtered at the handoff
    from harness.store import connect
    from harness.store.splits import KNOWN, _find

    with connect(home) as con:
        prefix = _find(con, "mine", base.split)["prefix"]
        for part in KNOWN:
            con.execute(f"DROP TABLE {prefix}_{part}")
    older = tmp_path / "older"
    older.mkdir()
    export_split(home, split, older)
    for name in ("users", "items"):
        assert_frame_equal(
            pl.read_parquet(older / f"{name}.parquet"),
            pl.read_parquet(tmp_path / f"{name}.parquet"),
        )

    with pytest.raises(ConfigError, match="prepared again"):
        export_split(home, dataclasses.replace(split, fingerprint="another version"), tmp_path)
