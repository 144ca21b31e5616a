"""Metrics: hand-computed values, agreement with a slow plain-Python oracle, properties."""

import math

import numpy as np
import polars as pl
import pytest

from harness.metrics import evaluate
from harness.recs import validate_recommendations


def _norm(users, items, scores):
    frame = pl.DataFrame({"user_id": users, "item_id": items, "score": scores})
    return validate_recommendations(frame, source="test")[0]


@pytest.fixture
def case():
    # user 1: list 10, 11, 12 (11 and 12 tie: input order kept), relevant {11, 12}
    # user 2: list 10, 13, relevant {99}; user 3: no list, relevant {10} (cold)
    recs = _norm([1, 1, 1, 2, 2], [10, 11, 12, 10, 13], [3.0, 2.0, 2.0, 1.0, 0.5])
    truth = pl.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [11, 12, 99, 10]})
    train = pl.DataFrame({"user_id": [1, 2, 2], "item_id": [10, 11, 13]})
    return recs, truth, train


def test_hand_computed(case):
    recs, truth, train = case
    cats = pl.DataFrame({"item_id": [10, 11, 12], "categories": [["a"], ["a", "b"], ["b"]]})
    m = evaluate(recs, truth, ks=(1, 2, 3), train=train, item_categories=cats).metrics
    a = m["all"]
    l3, l4 = 1 / math.log2(3), 1 / math.log2(4)
    assert a["precision@3"] == pytest.approx((2 / 3) / 3)
    assert a["recall@2"] == pytest.approx((1 / 2) / 3)
    assert a["map@3"] == pytest.approx((1 / 2 + 2 / 3) / 2 / 3)
    assert a["ndcg@3"] == pytest.approx((l3 + l4) / (1 + l3) / 3)
    assert a["ndcg@2"] == pytest.approx(l3 / (1 + l3) / 3)
    assert a["mrr@3"] == pytest.approx(0.5 / 3)
    assert a["hit_rate@1"] == 0 and a["hit_rate@2"] == pytest.approx(1 / 3)
    # train items 10, 11, 13 (12 is outside the catalogue: counts for accuracy only)
    assert a["coverage@1"] == pytest.approx(1 / 3) and a["coverage@3"] == pytest.approx(1.0)
    assert a["gini@1"] == pytest.approx(2 / 3)  # exposure [0, 0, 2]
    # novelty: 2 train users; c(10)=c(11)=c(13)=1, c(12)=0
    nov = lambda c: -math.log2((c + 1) / 3)  # noqa: E731
    assert a["novelty@3"] == pytest.approx(((2 * nov(1) + nov(0)) / 3 + nov(1)) / 3)
    # diversity: user 1 only (user 2 has one categorised item)
    assert a["diversity@2"] == pytest.approx(1 - 1 / math.sqrt(2))
    assert a["diversity@3"] == pytest.approx(1 - (1 / math.sqrt(2) + 0 + 1 / math.sqrt(2)) / 3)
    assert "diversity@1" not in a
    assert m["warm"]["precision@3"] == pytest.approx((2 / 3) / 2)
    assert m["cold"]["precision@3"] == 0


def test_more_relevant_than_k_and_string_ids():
    recs = _norm(["u"] * 2, ["a", "b"], [2.0, 1.0])
    truth = pl.DataFrame({"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"]})
    a = evaluate(recs, truth, ks=(1, 2, 5)).metrics["all"]
    assert a["map@2"] == 1.0 and a["ndcg@2"] == pytest.approx(1.0) and a["recall@2"] == 0.5
    assert a["precision@5"] == pytest.approx(2 / 5)  # fewer than k items: still / k
    assert a["map@5"] == pytest.approx(2 / 4)  # min(n_u, k) = 4


def test_diversity_skipped_without_categories(case):
    recs, truth, train = case
    e = evaluate(recs, truth, ks=(2,), train=train)
    assert any("diversity skipped" in n for n in e.notices)
    assert e.per_user.height == 3 and set(e.per_user["segment"]) == {"warm", "cold"}


def _oracle(lists, truth, k):
    """Slow plain-Python DESIGN.md formulas."""
    out = {n: 0.0 for n in ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")}
    for u, rel in truth.items():
        lst = lists.get(u, [])[:k]
        hits = [1 if i in rel else 0 for i in lst]
        n = len(rel)
        out["precision"] += sum(hits) / k
        out["recall"] += sum(hits) / n
        out["map"] += sum(h * sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits)) / min(n, k)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(n, k)))
        out["ndcg"] += sum(h / math.log2(i + 2) for i, h in enumerate(hits)) / idcg
        out["mrr"] += next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0)
        out["hit_rate"] += float(any(hits))
    return {f"{n}@{k}": v / len(truth) for n, v in out.items()}


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_oracle_and_properties(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    lists = {
        u: list(rng.permutation(n_items)[: rng.integers(0, 12)])
        for u in range(n_users)
        if rng.random() < 0.8
    }
    truth = {
        u: set(rng.choice(n_items, rng.integers(1, 8), replace=False).tolist())
        for u in range(n_users)
    }
    rows = [(u, int(i), float(-r)) for u, lst in lists.items() for r, i in enumerate(lst)]
    recs = _norm([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    tf = pl.DataFrame(
        [(u, i) for u, s in truth.items() for i in s], schema=["user_id", "item_id"], orient="row"
    )
    ks = (1, 3, 5, 10)
    e = evaluate(recs, tf, ks=ks)
    for k in ks:
        for name, value in _oracle(lists, truth, k).items():
            assert e.metrics["all"][name] == pytest.approx(value), name
    pu = e.per_user
    for k in ks:
        for name in ("precision", "recall", "map", "ndcg", "mrr", "hit_rate"):
            assert pu[f"{name}@{k}"].is_between(0, 1).all()
    for a, b in zip(ks, ks[1:]):
        assert (pu[f"recall@{a}"] <= pu[f"recall@{b}"] + 1e-12).all()
        assert (pu[f"hit_rate@{a}"] <= pu[f"hit_rate@{b}"]).all()
    for k in ks:
        hits = [sum(1 for i in lists.get(u, [])[:k] if i in truth[u]) for u in pu["user_id"]]
        assert np.allclose(pu[f"precision@{k}"].to_numpy() * k, hits)
