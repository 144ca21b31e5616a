"""Novelty and diversity (prefix sums over contiguous per-user blocks) agree with a plain-Python
oracle whatever the row order, rank gaps, id types or catalogue gaps."""

from __future__ import annotations

import math
import random

import polars as pl
import pytest

from harness.metrics import evaluate


def _oracle(lists: dict, cats: dict, train: list[tuple], k: int) -> dict[str, dict]:
    n_users = len({u for u, _ in train})
    count = {}
    for _u, i in set(train):
        count[i] = count.get(i, 0) + 1
    novelty, diversity = {}, {}
    for user, items in lists.items():
        top = items[:k]
        novelty[user] = (
            sum(-math.log2((count.get(i, 0) + 1) / (n_users + 1)) for i in top) / len(top)
            if top
            else 0.0
        )
        vecs = [cats[i] for i in top if cats.get(i)]
        if len(vecs) >= 2:
            cos = [
                len(a & b) / math.sqrt(len(a) * len(b))
                for x, a in enumerate(vecs)
                for b in vecs[x + 1 :]
            ]
            diversity[user] = 1 - sum(cos) / len(cos)
    return {"novelty": novelty, "diversity": diversity}


@pytest.mark.parametrize("seed", range(4))
def test_novelty_and_diversity_agree_with_oracle(seed):
    rng = random.Random(seed)
    ids = (lambda x: f"i{x}") if seed % 2 else (lambda x: x)
    items = [ids(x) for x in range(30)]
    cats = {i: {c for c in "abcde" if rng.random() < 0.4} for i in items[:25]}  # 25..29: none
    users = list(range(12))
    lists = {u: rng.sample(items, rng.randint(0, 8)) for u in users}
    rows = [
        (u, i, r * (2 if seed >= 2 else 1) + 1)  # seeds 2, 3: ranks 1, 3, 5, ... (gaps)
        for u, li in lists.items()
        for r, i in enumerate(li)
    ]
    rng.shuffle(rows)
    recs = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Int64,
            "item_id": pl.Int64 if seed % 2 == 0 else pl.Utf8,
            "rank": pl.Int32,
        },
        orient="row",
    )
    truth = pl.DataFrame({"user_id": users, "item_id": [items[0]] * len(users)})
    train = [(u, rng.choice(items[5:])) for u in range(20) for _ in range(3)]
    train_frame = pl.DataFrame(train, schema=["user_id", "item_id"], orient="row")
    cat_frame = pl.DataFrame(
        {"item_id": list(cats), "categories": [sorted(c) for c in cats.values()]}
    )
    ks = (1, 3, 8)
    per_user = evaluate(recs, truth, ks=ks, train=train_frame, item_categories=cat_frame).per_user
    for k in ks:
        top = {
            u: [
                i
                for i, r in sorted(((i, r) for uu, i, r in rows if uu == u), key=lambda t: t[1])
                if r <= k
            ]
            for u in users
        }  # the rank value, gaps or not
        want = _oracle(top, cats, train, k=len(items))
        got = {row["user_id"]: row for row in per_user.iter_rows(named=True)}
        for u in users:
            assert got[u][f"novelty@{k}"] == pytest.approx(want["novelty"][u])
            assert (
                got[u][f"diversity@{k}"] == pytest.approx(want["diversity"].get(u), abs=1e-12)
                if u in want["diversity"]
                else got[u][f"diversity@{k}"] is None
            )
