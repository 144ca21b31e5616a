"""Classic baselines: the contract (via check_recommender), hand-computed cases, references."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from baselines.popular import PopularRecommender
from harness import plugins
from harness.api import TrainData
from harness.checks import check_recommender, example_data
from harness.errors import UsageError

BASELINES = ["random", "popular", "personal-popular", "itemknn", "userknn", "ease", "als", "bpr"]
# small settings so the contract checks stay fast
FAST = {
    "als": {"factors": "8", "iterations": "3"},
    "bpr": {"factors": "8", "iterations": "5"},
    "ease": {"regularization": "10"},
}


def _data(rows, cutoff=None, seed=0) -> TrainData:
    """rows: (user, item[, days after 2024-01-01[, weight]])."""
    users = [r[0] for r in rows]
    items = [r[1] for r in rows]
    start = datetime(2024, 1, 1)
    times = [start + timedelta(days=r[2]) if len(r) > 2 else None for r in rows]
    weights = [float(r[3]) if len(r) > 3 else 1.0 for r in rows]
    frame = pl.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": pl.Series(times, dtype=pl.Datetime("us")),
            "weight": pl.Series(weights, dtype=pl.Float32),
        }
    )
    return TrainData(frame, cutoff=cutoff, seed=seed)


def _lists(recs: pl.DataFrame) -> dict:
    recs = recs.sort(["user_id", "score"], descending=[False, True], maintain_order=True)
    return {u: g["item_id"].to_list() for (u,), g in recs.group_by("user_id", maintain_order=True)}


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_keeps_the_contract(name):
    check_recommender(lambda: plugins.build(name, FAST.get(name, {})), k=10)


@pytest.mark.parametrize("name", ["itemknn", "userknn", "ease", "als", "personal-popular"])
def test_string_ids_and_exclude_seen_off(name):
    base = example_data(n_users=30, n_items=20, seed=3)
    frame = base.interactions.with_columns(
        pl.format("u{}", "user_id").alias("user_id"), pl.format("i{}", "item_id").alias("item_id")
    )
    data = TrainData(frame, seed=1)
    params = {**FAST.get(name, {}), "exclude_seen": "false"}
    check_recommender(lambda: plugins.build(name, params), data=data, k=25)


def test_popular_agrees_with_a_hand_count():
    # distinct users: item 7 -> 3, item 5 -> 2 (user 1 twice counts once), item 9 -> 1, item 3 -> 1
    data = _data([(1, 5), (1, 5), (2, 5), (1, 7), (2, 7), (3, 7), (3, 9), (4, 3)])
    model = plugins.build("popular", {}).fit(data)
    recs = model.recommend(pl.Series([1, 3, 99]), 3)
    assert _lists(recs) == {1: [3, 9], 3: [5, 3], 99: [7, 5, 3]}  # ties (3, 9) by item order
    cold = recs.filter(pl.col("user_id") == 99)
    assert cold["score"].to_list() == [3.0, 2.0, 1.0]
    keep = plugins.build("popular", {"exclude_seen": "false"}).fit(data)
    assert _lists(keep.recommend(pl.Series([1]), 2)) == {1: [7, 5]}


def test_popular_window_counts_only_recent_days_then_falls_back():
    rows = [(1, 5, 1), (2, 5, 2), (3, 5, 3), (1, 7, 28), (2, 8, 29), (3, 8, 27), (4, 9, 5)]
    data = _data(rows, cutoff=datetime(2024, 1, 31))
    model = plugins.build("popular", {"window_days": "5"}).fit(data)
    # window [Jan 26, Jan 31): item 8 twice, item 7 once; then all-time: 5 (3 users), 9 (1)
    assert _lists(model.recommend(pl.Series([99]), 4)) == {99: [8, 7, 5, 9]}
    with pytest.raises(UsageError, match=r"window_days=0 is out of range \(must be >= 1\)"):
        plugins.build("popular", {"window_days": "0"})
    with pytest.raises(ValueError, match="window_days must be positive"):  # built directly
        PopularRecommender(window_days=0)


def test_personal_popular_puts_own_repeats_first_then_popular():
    data = _data(
        [
            (1, 5),
            (1, 5),
            (1, 5),
            (1, 9),
            (1, 9),
            (1, 3),
            (2, 7),
            (3, 7),
            (4, 7),
            (2, 8),
            (3, 8),
            (4, 3),
        ]
    )
    model = plugins.build("personal-popular", {}).fit(data)
    recs = model.recommend(pl.Series([1, 42]), 5)
    # user 1: 5 (x3), 9 (x2), 3 (x1), then popular unseen: 7 (3 users), 8 (2)
    assert _lists(recs) == {1: [5, 9, 3, 7, 8], 42: [7, 3, 8, 5, 9]}
    excluded = plugins.build("personal-popular", {"exclude_seen": "true"}).fit(data)
    assert _lists(excluded.recommend(pl.Series([1]), 5)) == {1: [7, 8]}


def test_ease_matches_a_dense_reference():
    rng = np.random.default_rng(0)
    rows = [
        (u, i, 0, w)
        for u in range(12)
        for i in range(9)
        for w in [rng.integers(1, 4)]
        if rng.random() < 0.4
    ]
    data = _data(rows)
    lam = 2.0
    x = data.matrix.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    ref = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(ref, 0.0)
    model = plugins.build("ease", {"regularization": str(lam), "exclude_seen": "false"}).fit(data)
    np.testing.assert_allclose(model.weights, ref, rtol=1e-4, atol=1e-5)
    recs = model.recommend(data.user_ids, 9)
    u0 = recs.filter(pl.col("user_id") == data.user_ids[0])
    scores = x[0] @ ref
    np.testing.assert_allclose(u0["score"].to_numpy(), np.sort(scores)[::-1], rtol=1e-4, atol=1e-5)


def test_itemknn_cosine_matches_a_dense_reference_when_all_neighbours_are_kept():
    data = example_data(n_users=25, n_items=12, seed=5)
    x = data.matrix.toarray().astype(np.float64)
    norms = np.linalg.norm(x, axis=0)
    sim = (x.T @ x) / np.outer(norms, norms)
    model = plugins.build("itemknn", {"neighbours": "100", "exclude_seen": "false"}).fit(data)
    dense = model.similarity.toarray()
    np.fill_diagonal(sim, np.diag(dense))  # implicit's handling of self-similarity is its own
    np.testing.assert_allclose(dense, sim, rtol=1e-5, atol=1e-6)


def test_userknn_matches_a_brute_force_reference():
    data = example_data(n_users=20, n_items=10, seed=7)
    x = data.matrix.toarray().astype(np.float64)
    normed = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = normed @ normed.T
    np.fill_diagonal(sim, 0.0)
    n = 3
    top = np.argsort(-sim, axis=1, kind="stable")[:, :n]
    keep = np.zeros_like(sim)
    np.put_along_axis(keep, top, np.take_along_axis(sim, top, axis=1), axis=1)
    scores = keep @ x
    model = plugins.build("userknn", {"neighbours": str(n), "max_postings": "0"}).fit(data)
    got = model._score(np.arange(data.n_users))
    # ties between equally similar neighbours may be broken differently: compare where unique
    unique = np.array(
        [
            len(set(np.round(row[top[i]], 6))) == n
            and np.round(np.sort(row)[::-1][n], 6) < np.round(row[top[i][-1]], 6)
            for i, row in enumerate(sim)
        ]
    )
    assert unique.sum() >= 10
    np.testing.assert_allclose(got[unique], scores[unique], rtol=1e-4, atol=1e-5)


def test_random_is_seeded_per_user_and_independent_of_the_batch():
    data = example_data(seed=0)
    model = plugins.build("random", {}).fit(data)
    all_users = model.recommend(data.user_ids, 5)
    alone = model.recommend(data.user_ids.gather([7, 3]), 5)
    assert _lists(alone) == {
        u: v for u, v in _lists(all_users).items() if u in set(alone["user_id"])
    }
    again = plugins.build("random", {}).fit(data).recommend(data.user_ids, 5)
    assert _lists(again) == _lists(all_users)
    other = TrainData(data.interactions, cutoff=data.cutoff, seed=1)
    differ = plugins.build("random", {}).fit(other).recommend(data.user_ids, 5)
    assert _lists(differ) != _lists(all_users)


def test_weighted_random_prefers_popular_items():
    data = example_data(n_users=60, n_items=40, seed=0)
    users = pl.Series(range(10_000, 12_000))  # cold: no seen items to exclude
    pop = data.item_popularity
    head = set(data.item_ids.gather(np.argsort(-pop, kind="stable")[:5]).to_list())

    def share(weighted: str) -> float:
        recs = plugins.build("random", {"weighted": weighted}).fit(data).recommend(users, 1)
        return recs["item_id"].is_in(list(head)).mean()

    assert share("true") > 2 * share("false")
    assert 0.05 < share("false") < 0.2  # uniform: 5 of 40 items


def test_every_baseline_fills_k_for_cold_and_sparse_users():
    # user 2 shares no item with anyone: knn models must still fill from popularity
    data = _data([(1, 10), (1, 11), (3, 10), (3, 12), (2, 13), (4, 11)])
    for name in BASELINES:
        recs = plugins.build(name, FAST.get(name, {})).fit(data).recommend(pl.Series([2, 5]), 3)
        per_user = dict(recs.group_by("user_id").len().iter_rows())
        assert per_user == {2: 3, 5: 3}, name


def test_userknn_pruned_index_keeps_the_contract_and_bounds_candidates():
    data = example_data(n_users=40, n_items=15, seed=11)
    model = plugins.build("userknn", {"max_postings": "2"}).fit(data)
    assert np.diff(model._index.indptr).max() == 2  # each item lists at most 2 users
    check_recommender(lambda: plugins.build("userknn", {"max_postings": "2"}), data=data)


def test_ease_weights_do_not_depend_on_the_thread_count():
    """OpenBLAS's parallel Cholesky rounds differently with each thread count; EASE factorises on
    one thread so that its lists (and the two-stage submission built on them) are the same on one
    core as on many."""
    base = example_data(n_users=400, n_items=300, seed=3)
    fitted = [
        plugins.build("ease", {"regularization": "10"}).fit(
            TrainData(base.interactions, seed=0, n_threads=n)
        )
        for n in (1, 2)
    ]
    assert fitted[0].weights.shape[0] > 200
    assert np.array_equal(fitted[0].weights, fitted[1].weights)
