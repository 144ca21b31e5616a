"""check_recommender catches each way a plugin can break the contract."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from harness.checks import check_recommender, example_data
from harness.errors import PluginError


class Good:
    """Most popular unseen items for everyone; cold users get the plain top."""

    exclude_seen = True

    def fit(self, data):
        self.data = data
        order = np.argsort(-data.item_popularity, kind="stable")
        self.top = data.item_ids.gather(order)

    def recommend(self, users, k):
        seen = self.data.interactions.select("user_id", "item_id").unique()
        cand = pl.DataFrame({"user_id": users}).join(
            pl.DataFrame({"item_id": self.top, "score": np.arange(self.top.len(), 0, -1.0)}),
            how="cross",
        )
        cand = cand.join(seen, on=["user_id", "item_id"], how="anti")
        return (
            cand.sort(["user_id", "score"], descending=[False, True])
            .group_by("user_id", maintain_order=True)
            .head(k)
        )


def _variant(recommend):
    return type("Broken", (Good,), {"recommend": recommend})


def test_a_correct_model_passes_and_reports_counts():
    report = check_recommender(Good, k=5)
    assert report == {"users": 63, "cold_users": 3, "rows": 63 * 5}
    check_recommender(Good(), data=example_data(n_users=10, n_items=8, seed=2), k=20)


@pytest.mark.parametrize(
    "recommend, message",
    [
        (
            lambda self, users, k: Good.recommend(self, users, k).to_dicts(),
            "not a polars DataFrame",
        ),
        (lambda self, users, k: Good.recommend(self, users, k).drop("score"), "lacks column"),
        (
            lambda self, users, k: Good.recommend(self, users, k + 1),
            "recommend output: more than k=5 items for user",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).with_columns(
                pl.col("user_id") + 1000
            ),
            "recommend output: users not asked for at row 1 ",
        ),
        (
            lambda self, users, k: pl.concat([Good.recommend(self, users, k - 1)] * 2),
            "recommend output: item listed twice for one user at row",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).with_columns(
                pl.col("score") * -1
            ),
            "non-increasing score order",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).filter(
                pl.col("user_id").is_in(self.data.user_ids.implode())
            ),
            "3 cold",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).with_columns(
                pl.col("score")
                .shuffle(seed=np.random.randint(1 << 30))
                .sort(descending=True)
                .over("user_id"),
                item_id=pl.col("item_id").shuffle(seed=np.random.randint(1 << 30)).over("user_id"),
            ),
            "different recommendations",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).with_columns(
                pl.lit(float("nan")).alias("score")
            ),
            "recommend output: null or NaN score at row 1 ",
        ),
        (
            lambda self, users, k: Good.recommend(self, users, k).with_columns(
                pl.col("item_id") + 10_000
            ),
            "items unknown",
        ),
    ],
)
def test_each_broken_rule_is_named(recommend, message):
    with pytest.raises(PluginError, match=message):
        check_recommender(_variant(recommend), k=5)


def test_seen_items_are_flagged_only_when_the_model_excludes_them():
    class Repeats(Good):
        def recommend(self, users, k):
            return (
                self.data.interactions.select("user_id", "item_id", score=pl.lit(1.0))
                .unique(["user_id", "item_id"])
                .filter(pl.col("user_id").is_in(users.implode()))
                .sort("user_id", "item_id")
                .group_by("user_id", maintain_order=True)
                .head(k)
            )

    with pytest.raises(PluginError, match="already in the user's train history"):
        check_recommender(Repeats, k=3, full_lists=False)
    Repeats.exclude_seen = False
    check_recommender(Repeats, k=3, full_lists=False)


def test_a_crash_is_reported_with_the_model_name():
    class Crashes(Good):
        def fit(self, data):
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match="Crashes failed: RuntimeError: boom"):
        check_recommender(Crashes)
