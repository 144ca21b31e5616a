"""The two-stage pipeline on a tiny dataset built here: output contract, the ranker is trained on
a window carved from train, features never look past the cutoff, and the entry point works."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

try:
    import two_stage  # noqa: F401  (installed with `pip install -e submissions/two-stage`)
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.api import TrainData
from harness.checks import check_recommender
from two_stage import TwoStageRecommender
from two_stage.features import add_features
from two_stage.model import _matrix

START = datetime(2024, 1, 1)
SMALL = dict(
    candidates=15,
    windows=2,
    n_estimators=20,
    min_child_samples=5,
    als_factors=8,
    als_iterations=3,
    knn_neighbours=10,
)


def tiny_data(n_users: int = 80, n_items: int = 50, seed: int = 0) -> TrainData:
    """Users with a taste for one of three genres, skewed popularity, 90 days of timestamps."""
    rng = np.random.default_rng(seed)
    genres = np.array(["a", "b", "c"])
    item_genre = rng.integers(0, 3, n_items)
    taste = rng.integers(0, 3, n_users)
    per_user = rng.integers(5, 20, n_users)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.7
    liked = item_genre[None, :] == taste[:, None]
    p = pop[None, :] * np.where(liked, 4.0, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    items = np.concatenate(
        [rng.choice(n_items, size=c, replace=False, p=p[u]) for u, c in enumerate(per_user)]
    )
    hours = rng.integers(0, 24 * 90, len(users))
    inter = pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": (items + 1000).astype(np.int64),
            "timestamp": pl.Series(
                [START + timedelta(hours=int(h)) for h in hours], dtype=pl.Datetime("us")
            ),
            "weight": pl.Series(np.ones(len(users)), dtype=pl.Float32),
        }
    )
    table = pl.DataFrame(
        {
            "item_id": np.arange(1000, 1000 + n_items, dtype=np.int64),
            "year": (1990 + item_genre * 5).astype(np.int64),
            "categories": [[str(genres[g])] for g in item_genre],
        }
    )
    return TrainData(inter, items=table, cutoff=START + timedelta(days=90), seed=seed, n_threads=1)


@pytest.fixture(scope="module")
def fitted():
    data = tiny_data()
    return data, TwoStageRecommender(**SMALL).fit(data)


def test_output_contract_warm_and_cold(fitted):
    data, model = fitted
    assert model.ranker is not None  # the window had positives: a ranker was trained
    cold = pl.Series("user_id", [10_001, 10_002], dtype=pl.Int64)
    users = pl.concat([data.user_ids.head(30).rename("user_id"), cold])
    recs = model.recommend(users, 10)
    assert recs.columns == ["user_id", "item_id", "score"]
    assert set(recs.get_column("user_id").to_list()) == set(users.to_list())
    per_user = recs.group_by("user_id").agg(
        n=pl.len(),
        distinct=pl.col("item_id").n_unique(),
        ordered=(pl.col("score").diff().fill_null(0) <= 0).all(),
    )
    assert per_user.get_column("n").to_list() == [10] * users.len()
    assert (per_user.get_column("distinct") == 10).all() and per_user.get_column("ordered").all()
    seen = recs.join(
        data.interactions.select("user_id", "item_id"), on=["user_id", "item_id"], how="semi"
    )
    assert seen.height == 0  # the user's train items never come back
    assert recs.get_column("score").is_finite().all()


@pytest.mark.parametrize("generators", ["popular,als,itemknn,ease", "popular,random"])
def test_cold_users_are_ranked_once_per_group_with_the_lists_each_would_get(generators):
    """Cold users whose features and candidate lists are all equal are ranked once and share the
    list; the result is what ranking each of them on its own gives. With the user table, groups
    follow its rows; with ``random`` as a generator (its list hashes the user id) every cold user
    is a group of its own."""
    data = tiny_data()
    cold_ids = list(range(10_001, 10_013))
    table = pl.DataFrame(
        {
            "user_id": data.user_ids.to_list() + cold_ids,
            "sex": ["F", "M"] * ((data.n_users + len(cold_ids)) // 2),
            "age": [20 + 10 * (i % 3) for i in range(data.n_users + len(cold_ids))],
        }
    )
    with_users = TrainData(
        data.interactions, users=table, items=data.items, cutoff=data.cutoff, seed=0, n_threads=1
    )
    model = TwoStageRecommender(**{**SMALL, "generators": generators}).fit(with_users)
    # 10,013 is in no table: its own group (null features)
    cold = pl.Series("user_id", [*cold_ids, 10_013], dtype=pl.Int64)
    groups = model._cold_groups(cold, model.candidates).get_column("_group")
    expected = 6 + 1 if generators.endswith("ease") else cold.len()  # 2 sexes x 3 ages + 1
    assert groups.n_unique() == expected
    users = pl.concat([data.user_ids.head(5).rename("user_id"), cold])
    got = model.recommend(users, 7).sort("user_id", maintain_order=True)
    one_by_one = pl.concat(
        [
            model.rank(model.candidate_features(users.slice(i, 1), model.candidates), 7)
            for i in range(users.len())
        ]
    ).sort("user_id", maintain_order=True)
    assert got.equals(one_by_one)


def test_contract_checker_and_determinism():
    """harness.checks: lists, order, seen items, cold users, two fits with one seed agree."""
    report = check_recommender(lambda: TwoStageRecommender(**SMALL), data=tiny_data(seed=3), k=8)
    assert report["cold_users"] > 0


def test_ranker_features_come_from_before_the_window(monkeypatch):
    """The window is the last 10% of train by time; while training the ranker, features and
    generators see only what came before it, and the labels come from the window."""
    import two_stage.model as model_module

    data = tiny_data()
    model = TwoStageRecommender(**SMALL)
    before, window, start = model._carve(data)
    assert before.height + window.height == data.interactions.height
    before1, window1, start1 = model._carve(data, 1)
    assert (
        window1.get_column("timestamp").max() < start
        and before1.height + window1.height == before.height
    )
    assert before.get_column("timestamp").max() < start <= window.get_column("timestamp").min()
    assert abs(window.height / data.interactions.height - 0.1) < 0.02

    calls, outputs = [], []
    real = model_module.add_features

    def spy(cands, inter, items, cutoff, recent_days, tables=None):
        calls.append((inter.get_column("timestamp").max(), cutoff, cands))
        outputs.append(real(cands, inter, items, cutoff, recent_days, tables))
        return outputs[-1]

    monkeypatch.setattr(model_module, "add_features", spy)
    model.fit(data)
    assert len(calls) == 2  # one labelled frame per window, none from the final refit
    (last0, cutoff0, cands0), (last1, cutoff1, _) = calls
    assert last0 < start and cutoff0 == start
    assert cutoff1 < start and last1 < cutoff1  # window 1 ends where window 0 starts
    labelled = cands0.filter(pl.col("label") == 1).select("user_id", "item_id")
    assert labelled.height > 0
    assert labelled.join(window, on=["user_id", "item_id"], how="anti").height == 0
    assert labelled.join(before, on=["user_id", "item_id"], how="semi").height == 0  # unseen then
    assert "ui_genre_mean" in model.features and "im_year" in model.features
    # the recent-context features of window 0 are those of its past alone (the user's last items
    # before the window, the item's interactions before the window)
    context = [
        c for c in model.features if c.startswith(("ui_sim_", "ui_pop_before", "ui_genre_last"))
    ]
    assert len(context) == 7
    alone = real(cands0, before, data.items, start, model.recent_days)
    assert outputs[0].select(context).equals(alone.select(context))
    with_window = real(cands0, data.interactions, data.items, start, model.recent_days)
    assert not with_window.select(context).equals(alone.select(context))  # it reads `inter`


def test_genre_affinity_by_hand():
    inter = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 1],
            "item_id": [10, 11, 12, 13],
            "timestamp": pl.Series([START] * 4, dtype=pl.Datetime("us")),
            "weight": pl.Series([1.0] * 4, dtype=pl.Float32),
        }
    )
    items = pl.DataFrame(
        {
            "item_id": [10, 11, 12, 13, 20],
            "categories": [["x"], ["x"], ["x", "y"], ["z"], ["x", "z"]],
        }
    )
    pairs = pl.DataFrame({"user_id": [1], "item_id": [20]})
    out = add_features(pairs, inter, items, START + timedelta(days=2), 1)
    # the user's shares: x 3/4, z 1/4; item 20 is x and z: mean 1/2, max 3/4
    assert out.get_column("ui_genre_mean").item() == pytest.approx(0.5)
    assert out.get_column("ui_genre_max").item() == pytest.approx(0.75)
    assert out.get_column("u_days_since_last").item() == pytest.approx(2.0)


def test_recent_context_features_by_hand():
    """Cosine similarity with the user's last 3 / 10 items, the item's interactions before the
    user's last one, genre shares among the last 10, recomputed here pair by pair."""
    data = tiny_data()
    inter = data.interactions
    pairs = pl.DataFrame({"user_id": [1, 1, 2, 999], "item_id": [1000, 1001, 1002, 1003]})
    out = add_features(pairs, inter, data.items, data.cutoff, 10)

    def users_of(item):
        return set(inter.filter(pl.col("item_id") == item).get_column("user_id").to_list())

    for row in out.filter(pl.col("user_id") != 999).iter_rows(named=True):
        mine = inter.filter(pl.col("user_id") == row["user_id"]).sort(
            ["timestamp", "item_id"], descending=True
        )
        a = users_of(row["item_id"])
        for n in (3, 10):
            last = mine.head(n).get_column("item_id").to_list()
            cos = [len(a & users_of(j)) / np.sqrt(len(a) * len(users_of(j))) for j in last]
            assert row[f"ui_sim_last{n}"] == pytest.approx(np.mean(cos))
        now = mine.get_column("timestamp").max()
        times = inter.filter(pl.col("item_id") == row["item_id"]).get_column("timestamp")
        assert (
            row["ui_pop_before_30d"] == ((times >= now - timedelta(days=30)) & (times < now)).sum()
        )
        assert row["ui_pop_before"] == (times < now).sum()
        genre = data.items.filter(pl.col("item_id") == row["item_id"])["categories"][0][0]
        last10 = mine.head(10).join(data.items, on="item_id")
        share = last10.filter(pl.col("categories").list.contains(genre)).height / 10
        assert row["ui_genre_last_mean"] == pytest.approx(share)
    cold = out.filter(pl.col("user_id") == 999).row(0, named=True)
    assert cold["ui_sim_last3"] == 0 and cold["ui_pop_before"] == 0
    # off above max_context_rows train interactions (its products grow with the data)
    model = TwoStageRecommender(**{**SMALL, "max_context_rows": inter.height - 1}).fit(data)
    assert not any(c.startswith("ui_sim") for c in model.features)


def test_item_counts_do_not_look_past_the_users_last_interaction():
    """On a per-user split other users' later interactions are in train; the features relative
    to the user's "now" must not see them (no deployed recommender could): other users'
    interactions with the candidate after user 1's last one change none of user 1's features
    (``add_features`` builds the ranker's training rows and the serving rows alike), except the
    co-occurrence similarities and the item features measured over all of train from its end
    (documented in the README)."""
    data = tiny_data()
    mine = data.interactions.filter(pl.col("user_id") == 1)
    now = mine.get_column("timestamp").max()
    # a candidate is an item the user has not seen: the most popular such one
    item = (
        data.interactions.filter(~pl.col("item_id").is_in(mine.get_column("item_id").implode()))
        .group_by("item_id")
        .len()
        .sort(["len", "item_id"], descending=[True, False])
        .item(0, "item_id")
    )
    # an unrelated interaction well after them fixes the end of train in both frames
    last = pl.DataFrame(
        {
            "user_id": [999],
            "item_id": [1049],
            "timestamp": pl.Series([now + timedelta(days=30)], dtype=pl.Datetime("us")),
            "weight": pl.Series([1.0], dtype=pl.Float32),
        }
    )
    inter = pl.concat([data.interactions, last])
    later = pl.DataFrame(
        {
            "user_id": np.arange(2, 42, dtype=np.int64),
            "item_id": np.full(40, item, dtype=np.int64),
            "timestamp": pl.Series(
                [now + timedelta(hours=h) for h in range(1, 41)], dtype=pl.Datetime("us")
            ),
            "weight": pl.Series(np.ones(40), dtype=pl.Float32),
        }
    )
    more = pl.concat([inter, later]).unique(["user_id", "item_id"], keep="first")
    assert more.height > inter.height
    pairs = pl.DataFrame({"user_id": [1], "item_id": [item]})
    before = add_features(pairs, inter, data.items, None, 10)
    after = add_features(pairs, more, data.items, None, 10)
    assert before.columns == after.columns
    global_ = {"ui_sim_last3", "ui_sim_last10", "ui_pop_ratio"}  # co-occurrence, i_users
    own = [c for c in before.columns if not c.startswith("i_") and c not in global_]
    assert {"ui_pop_before_30d", "ui_pop_before_365d", "ui_pop_before"} <= set(own)
    assert {"ui_genre_last_mean", "u_days_since_last", "ui_genre_mean"} <= set(own)
    assert before.get_column("ui_pop_before").item() > 0
    assert not [c for c in before.columns if "after" in c]
    changed = [c for c in own if not before.get_column(c).equals(after.get_column(c))]
    assert changed == []
    assert (before.get_column("i_users") < after.get_column("i_users")).all()  # they are in it


def test_genre_affinity_is_exact_whatever_the_order_of_rows_and_categories():
    """The mean share is an integer sum divided once, so it is the same however polars orders
    (and, with its thread count, sums) the rows: the features fed to LightGBM, and so the lists,
    do not depend on the number of cores. (A float mean of the shares 3/45, 3/45, 12/45, 27/45
    is 0.25 in one order and 0.24999999999999997 in another.)"""
    counts = {"a": 3, "b": 3, "c": 12, "d": 27}
    genres = [g for g, c in counts.items() for _ in range(c)]
    inter = pl.DataFrame(
        {
            "user_id": [1] * 45,
            "item_id": list(range(100, 145)),
            "timestamp": pl.Series([START] * 45, dtype=pl.Datetime("us")),
            "weight": pl.Series([1.0] * 45, dtype=pl.Float32),
        }
    )
    orders = [list("abcd"), list("cabd"), list("dcba"), list("bdac"), list("cdab")]
    items = pl.DataFrame(
        {
            "item_id": list(range(100, 145)) + list(range(30, 30 + len(orders))),
            "categories": [[g] for g in genres] + orders,
        }
    )
    pairs = pl.DataFrame({"user_id": [1] * len(orders), "item_id": list(range(30, 35))})
    ref = START + timedelta(days=1)
    for seed in range(3):
        shuffled = inter.sample(fraction=1.0, shuffle=True, seed=seed)
        out = add_features(pairs.reverse() if seed else pairs, shuffled, items, ref, 1)
        # (3 + 3 + 12 + 27) / (4 categories x 45 interactions), exactly; max 27 / 45
        assert out.get_column("ui_genre_mean").to_list() == [0.25] * len(orders)
        assert out.get_column("ui_genre_max").to_list() == pytest.approx([0.6] * len(orders))
        assert out.get_column("ui_genre_max").n_unique() == 1  # bit for bit


def test_without_timestamps_or_items_it_still_ranks():
    data = tiny_data(seed=5)
    bare = TrainData(
        data.interactions.with_columns(pl.lit(None, pl.Datetime("us")).alias("timestamp")),
        seed=1,
        n_threads=1,
    )
    recs = TwoStageRecommender(**SMALL).fit(bare).recommend(bare.user_ids.head(5), 5)
    assert recs.group_by("user_id").len().get_column("len").to_list() == [5] * 5


def test_bad_parameter_is_a_value_error():
    with pytest.raises(ValueError, match="window_fraction"):
        TwoStageRecommender(window_fraction=1.5)


def test_entry_point_builds_through_harness():
    from harness import plugins

    if "two-stage" not in {p.name for p in plugins.discover()}:
        pytest.skip("harness-two-stage is not installed (pip install -e submissions/two-stage)")
    model = plugins.build("two-stage", {"candidates": "20", "n_estimators": "10"})
    assert isinstance(model, TwoStageRecommender) and model.candidates == 20


def test_item_metadata_numeric_columns_and_year_in_title():
    from two_stage.features import item_features

    inter = pl.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [10, 11],
            "timestamp": pl.Series([START] * 2, dtype=pl.Datetime("us")),
            "weight": pl.Series([1.0, 1.0], dtype=pl.Float32),
        }
    )
    items = pl.DataFrame(
        {
            "item_id": [10, 11],
            "title": ["Heat (1995)", "Untitled"],
            "genres": ["Action", "Drama"],
            "runtime": [170, 90],
        }
    )
    out = item_features(inter, items, START + timedelta(days=1), 1).sort("item_id")
    assert out.get_column("im_title_year").to_list() == [1995.0, None]
    assert out.get_column("im_runtime").to_list() == [170.0, 90.0]
    assert "im_genres_year" not in out.columns  # no year in that text column


def test_per_user_inner_split_carves_each_users_latest_slices():
    """Without a cutoff (a per-user split), window i is the i-th latest user_fraction of each
    user's interactions; 'before' is everything earlier for that user."""
    data = tiny_data()
    per_user = TrainData(data.interactions, items=data.items, cutoff=None, seed=0, n_threads=1)
    model = TwoStageRecommender(**SMALL, user_fraction=0.2, user_windows=2)
    assert model._mode(per_user) == "user" and model._mode(data) == "global"
    model._per_user = True
    inter = per_user.interactions.sort(["user_id", "timestamp", "item_id"])
    for i in (0, 1):
        before, window, start = model._carve(per_user, i)
        assert start is None
        n = (
            inter.group_by("user_id")
            .len()
            .with_columns(out=(pl.col("len") * 0.2).floor().cast(pl.Int64).clip(lower_bound=1))
        )
        sizes = window.group_by("user_id").len().join(n, on="user_id", suffix="_all")
        assert sizes.height == n.filter(pl.col("len") >= 2).height
        assert (sizes["len"] == sizes["out"]).all()  # floor(20%) per user, at least one
        # every window item is later than (or tied with) everything before it for that user
        last_before = before.group_by("user_id").agg(t=pl.col("timestamp").max())
        first_in = window.group_by("user_id").agg(t=pl.col("timestamp").min())
        both = last_before.join(first_in, on="user_id", suffix="_w")
        assert (both["t"] <= both["t_w"]).all()
        assert before.height + window.height == inter.height - i * window.height


def test_generators_are_registered_recommenders_built_by_name():
    """Composition goes through harness.api.build_recommender: any registered name works, an
    unknown one is an error naming it; the candidate pool's recall is recorded per window."""
    from harness.errors import NotFoundError

    data = tiny_data()
    model = TwoStageRecommender(**{**SMALL, "generators": "popular,itemknn"}).fit(data)
    assert set(model.generators) == {"popular", "itemknn"}
    assert {"popular_score", "itemknn_rank"} <= set(model.features)
    assert len(model.candidate_recall_) == 2 and all(0 < r <= 1 for r in model.candidate_recall_)
    with pytest.raises(NotFoundError, match="no-such"):
        TwoStageRecommender(generators="popular,no-such").fit(data)


def test_large_data_stacks_fewer_windows():
    """max_window_rows bounds the rows the generators are refitted on over all inner windows:
    with fewer than two trains' worth, one window (the ranker's queries all come from it)."""
    data = tiny_data()
    rows = data.interactions.height
    model = TwoStageRecommender(**{**SMALL, "windows": 3, "max_window_rows": 2 * rows + 1})
    frame = model.training_frame(data)
    assert frame.get_column("query").unique().sort().to_list() == [0, 1]
    assert len(model.candidate_recall_) == 2
    model = TwoStageRecommender(**{**SMALL, "windows": 3, "max_window_rows": 1})
    assert model.training_frame(data).get_column("query").unique().to_list() == [0]
    with pytest.raises(ValueError, match="max_window_rows"):
        TwoStageRecommender(max_window_rows=0)


def test_ranker_ensemble_and_thread_count_do_not_change_lists():
    """rankers=2 trains two boosters that differ in their seed and sums their scores; the lists
    do not depend on LightGBM's thread count (deterministic, row-wise histograms)."""
    data = tiny_data()
    model = TwoStageRecommender(**{**SMALL, "rankers": 2})
    frame = model.training_frame(data)
    model._train_ranker(frame, data, threads=1)
    model.serve_on(data)
    users = data.user_ids.head(20)
    cands = model.candidate_features(users, model.candidates)
    assert len(model.boosters_) == 2
    one = [b.predict(_matrix(cands, model.features)) for b in model.boosters_]
    assert not np.array_equal(one[0], one[1])  # different seeds, different trees
    lists = model.recommend(users, 5)
    model._train_ranker(frame, data, threads=2)
    two = [b.predict(_matrix(cands, model.features)) for b in model.boosters_]
    assert all(np.array_equal(a, b) for a, b in zip(one, two))
    assert model.recommend(users, 5).equals(lists)
    # above max_ensemble_rows train interactions, one booster (serving cost)
    model.max_ensemble_rows = data.interactions.height - 1
    model._train_ranker(frame, data)
    assert len(model.boosters_) == 1
    assert TwoStageRecommender().rankers == 5
    with pytest.raises(ValueError, match="rankers"):
        TwoStageRecommender(rankers=0)
    with pytest.raises(ValueError, match="objective"):
        TwoStageRecommender(objective="regression")
