"""Hypothesis properties of the metrics engine and agreement with a slow pure-Python reference of
DESIGN.md's formulas (integer and string ids, users without lists, catalogue items never listed)."""

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_metrics import _oracle

from harness.metrics import evaluate

KS = (1, 2, 3, 5, 8)
ACCURACY = ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")
ITEMS = list(range(12))


@st.composite
def cases(draw):
    """{user: list} (some users without one) and {user: non-empty relevant set}."""
    n_users = draw(st.integers(1, 6))
    truth = {
        u: draw(st.sets(st.sampled_from(ITEMS), min_size=1, max_size=6)) for u in range(n_users)
    }
    lists = {
        u: draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=9))
        for u in range(n_users)
        if draw(st.booleans())
    }
    as_str = draw(st.booleans())
    return lists, truth, as_str


def frames(lists, truth, as_str):
    cast = str if as_str else int
    recs = pl.DataFrame(
        [(cast(u), cast(i), r + 1) for u, lst in lists.items() for r, i in enumerate(lst)],
        schema={
            "user_id": pl.Utf8 if as_str else pl.Int64,
            "item_id": pl.Utf8 if as_str else pl.Int64,
            "rank": pl.Int32,
        },
        orient="row",
    )
    tf = pl.DataFrame(
        [(cast(u), cast(i)) for u, s in truth.items() for i in s],
        schema={"user_id": recs.schema["user_id"], "item_id": recs.schema["item_id"]},
        orient="row",
    )
    # catalogue: every item once, by one train user; 11 is never listed when lists avoid it
    train = pl.DataFrame({"user_id": [cast(0)] * len(ITEMS), "item_id": [cast(i) for i in ITEMS]})
    return recs, tf, train


def reference(lists, truth, k):
    """DESIGN.md, one user at a time: the accuracy oracle of test_metrics, plus coverage and gini."""
    values = _oracle(lists, truth, k)
    listed = {i for u in truth for i in lists.get(u, [])[:k]}
    values[f"coverage@{k}"] = len(listed) / len(ITEMS)
    counts = sorted(sum(i in lists.get(u, [])[:k] for u in truth) for i in ITEMS)
    total, n = sum(counts), len(counts)
    values[f"gini@{k}"] = (
        sum((2 * (j + 1) - n - 1) * x for j, x in enumerate(counts)) / (n * total) if total else 0.0
    )
    return values


@settings(max_examples=60, deadline=None)
@given(cases())
def test_agrees_with_reference(case):
    lists, truth, as_str = case
    recs, tf, train = frames(lists, truth, as_str)
    got = evaluate(recs, tf, ks=KS, train=train).metrics["all"]
    for k in KS:
        for name, value in reference(lists, truth, k).items():
            assert got[name] == pytest.approx(value, abs=1e-12), name


@settings(max_examples=60, deadline=None)
@given(cases())
def test_bounds_monotonicity_and_hits(case):
    lists, truth, as_str = case
    recs, tf, _ = frames(lists, truth, as_str)
    pu = evaluate(recs, tf, ks=KS).per_user
    for k in KS:
        for name in ACCURACY:
            assert pu[f"{name}@{k}"].is_between(0, 1).all()
        hits = [sum(i in truth[int(u)] for i in lists.get(int(u), [])[:k]) for u in pu["user_id"]]
        assert [round(p * k, 9) for p in pu[f"precision@{k}"]] == hits
    for a, b in zip(KS, KS[1:]):
        assert (pu[f"recall@{a}"] <= pu[f"recall@{b}"] + 1e-12).all()
        assert (pu[f"hit_rate@{a}"] <= pu[f"hit_rate@{b}"]).all()


@settings(max_examples=40, deadline=None)
@given(st.sets(st.integers(0, 50), min_size=1, max_size=12), st.booleans())
def test_perfect_list_has_ndcg_one(relevant, as_str):
    ordered = sorted(relevant)
    lists, truth = {0: ordered}, {0: set(relevant)}
    recs, tf, _ = frames(lists, truth, as_str)
    a = evaluate(recs, tf, ks=KS).metrics["all"]
    for k in KS:
        assert a[f"ndcg@{k}"] == pytest.approx(1.0)
        assert a[f"map@{k}"] == pytest.approx(1.0)
