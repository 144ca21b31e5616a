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


def test_worker_gets_item_features_only_for_items_known_at_the_cutoff(home, register_plugins):
    from harness.datasets import prepare
    from harness.runner import submit
    from harness.store.splits import load_split

    prepare("ml-latest-small", home=home)
    stored = load_split(home, "ml-latest-small", parts=("train", "items"))
    later = stored.items.join(stored.train.select("item_id").unique(), on="item_id", how="anti")
    assert later.height > 100  # films first rated after the cutoff exist in movies.csv

    register_plugins({"spy": SPY})
    run = submit(home, "spy", dataset="ml-latest-small", k=10)
    assert run.status == "ok"
    assert run.report["validation"]["users_with_lists"] == 1
