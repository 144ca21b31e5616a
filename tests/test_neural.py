"""Neural baselines (dssm, sasrec): a few training steps on a tiny dataset, then the contract."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from baselines._torch import FeatureCodes, padded_history
from baselines.dssm import DSSMRecommender
from baselines.sasrec import SASRecRecommender, training_windows
from harness import plugins
from harness.api import TrainData
from harness.checks import check_recommender
from harness.errors import PluginError

K = 5
FAST = {
    "dssm": {"epochs": 2, "dim": 16, "batch_size": 64, "max_len": 8},
    "sasrec": {
        "epochs": 2,
        "dim": 16,
        "batch_size": 16,
        "max_len": 8,
        "loss": "gbce",
        "negatives": 10,
        "valid_users": 8,
    },
}
CLASSES = {"dssm": DSSMRecommender, "sasrec": SASRecRecommender}


def tiny(seed: int = 0) -> TrainData:
    """30 users x 25 items with timestamps; user features (cold users 31, 32 included), item
    features with a categories list, a year, a genre string and a unique title."""
    rng = np.random.default_rng(seed)
    per_user = rng.integers(2, 10, size=30)
    users = np.repeat(np.arange(1, 31), per_user)
    items = rng.choice(np.arange(100, 125), size=len(users), p=np.linspace(2, 1, 25) / 37.5)
    start = datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": pl.Series(
                [start + timedelta(hours=int(h)) for h in rng.integers(0, 1000, len(users))],
                dtype=pl.Datetime("us"),
            ),
            "weight": pl.Series(np.ones(len(users)), dtype=pl.Float32),
        }
    ).unique(["user_id", "item_id"], keep="first", maintain_order=True)
    user_feats = pl.DataFrame(
        {
            "user_id": np.arange(1, 33, dtype=np.int64),
            "sex": ["f", "m"] * 16,
            "age": rng.integers(18, 70, 32),
        }
    )
    item_feats = pl.DataFrame(
        {
            "item_id": np.arange(100, 125, dtype=np.int64),
            "categories": [["a", "b"][: 1 + j % 2] if j % 3 else ["c"] for j in range(25)],
            "year": 1980 + np.arange(25),
            "genre": ["x", "y", "z", "x", "y"] * 5,
            "title": [f"t{j}" for j in range(25)],
        }
    )
    return TrainData(
        frame,
        users=user_feats,
        items=item_feats,
        cutoff=start + timedelta(hours=1000),
        seed=seed,
        n_threads=1,
    )


def fitted(name: str, **extra):
    return CLASSES[name](**{**FAST[name], **extra}).fit(tiny())


@pytest.mark.parametrize("name", ["dssm", "sasrec"])
def test_contract(name):
    check_recommender(lambda: CLASSES[name](**FAST[name]), data=tiny(), k=K)


@pytest.mark.parametrize("name", ["dssm", "sasrec"])
def test_lists_shape_order_and_seen(name):
    data = tiny()
    model = CLASSES[name](**FAST[name]).fit(data)
    users = pl.Series("user_id", [1, 2, 3, 31, 99], dtype=pl.Int64)  # 31: cold with features
    recs = model.recommend(users, K)
    assert recs.columns == ["user_id", "item_id", "score"]
    counts = recs.group_by("user_id").agg(n=pl.len(), d=pl.col("item_id").n_unique())
    assert sorted(counts["user_id"].to_list()) == [1, 2, 3, 31, 99]
    assert (counts["n"] == K).all() and (counts["d"] == K).all()
    # scores non-increasing within each list, in the returned order
    steps = recs.with_columns(d=pl.col("score").diff().over("user_id")).get_column("d")
    assert (steps.drop_nulls() <= 0).all()
    seen = data.interactions.select("user_id", "item_id")
    assert recs.join(seen, on=["user_id", "item_id"], how="semi").height == 0


@pytest.mark.parametrize("name", ["dssm", "sasrec"])
def test_exclude_seen_false_can_return_seen(name):
    data = tiny()
    model = CLASSES[name](**FAST[name], exclude_seen=False).fit(data)
    recs = model.recommend(data.user_ids, data.n_items)  # every item: seen ones must appear
    seen = data.interactions.select("user_id", "item_id").unique()
    assert recs.join(seen, on=["user_id", "item_id"], how="semi").height == seen.height


@pytest.mark.parametrize("name", ["dssm", "sasrec"])
def test_same_seed_same_lists_other_seed_differs(name):
    users = tiny().user_ids
    a = fitted(name).recommend(users, K)
    b = fitted(name).recommend(users, K)
    assert a.equals(b)
    other = dataclasses.replace(tiny(), seed=7)
    c = CLASSES[name](**FAST[name]).fit(other).recommend(users, K)
    assert not np.allclose(a["score"].to_numpy(), c["score"].to_numpy())


def test_dssm_triplet_and_plugin_params():
    model = plugins.build("dssm", {"loss": "triplet", "epochs": "1", "dim": "8"})
    model.fit(tiny())
    assert model.recommend(pl.Series([1, 2], dtype=pl.Int64), K).height == 2 * K
    with pytest.raises(PluginError, match="loss"):
        plugins.build("dssm", {"loss": "hinge"})


def test_dssm_cold_users_served_from_features():
    """Cold users with a feature row get the user tower's list; without one, popularity."""
    model = fitted("dssm")
    cold = model.recommend(pl.Series([31, 32, 99], dtype=pl.Int64), K)
    by_user = {u: g["item_id"].to_list() for (u,), g in cold.group_by("user_id")}
    popular = model.recommend(pl.Series([99], dtype=pl.Int64), K)["item_id"].to_list()
    assert by_user[99] == popular
    scores = cold.filter(pl.col("user_id") == 31)["score"].to_numpy()
    assert np.all(np.abs(scores) <= 1.0 + 1e-6)  # cosines, not popularity counts


def test_feature_codes_by_hand():
    table = pl.DataFrame(
        {
            "item_id": [1, 2, 3, 4],
            "categories": [["a", "b"], ["b"], [], None],
            "kind": ["x", "y", "x", None],
            "title": ["p", "q", "r", "s"],
            "year": [1990, None, 2000, 2010],
        }
    )
    codes = FeatureCodes(table, "item_id")
    assert [f[0] for f in codes.fields] == ["categories", "kind", "year"]  # title: near-unique
    cats, kind, year = codes.encode(pl.Series([2, 1, 4, 5]))
    assert cats.tolist() == [[2, 0], [1, 2], [0, 0], [0, 0]]
    assert kind[:, 0].tolist() == [2, 1, 0, 0]
    assert year[:, 0].tolist() == [0, 2, 4, 0]  # 3 distinct years: one bucket each, null -> 0


def test_padded_history_and_windows_by_hand():
    rows = np.array([0, 0, 0, 2, 2])
    items = np.array([5, 6, 7, 8, 9])
    assert padded_history(rows, items, 3, 2).tolist() == [[6, 7], [0, 0], [8, 9]]
    # max_len 2: windows of 3 items overlapping by one; a single-item window is dropped
    windows = training_windows(np.array([0, 0, 0, 0, 1]), np.array([1, 2, 3, 4, 5]), 2, 2)
    assert sorted(windows.tolist()) == [[0, 1, 2], [2, 3, 4]]


def test_sasrec_future_targets_are_later_items_of_the_window():
    """target=next: the next item; target=future: any later item of the window, each reachable."""
    import torch

    batch = torch.tensor([[0, 0, 1, 2, 3, 4]])  # right-aligned window, 4 real items
    gen = torch.Generator().manual_seed(0)
    assert SASRecRecommender(target="next")._targets(batch, gen).tolist() == [[0, 1, 2, 3, 4]]
    future = SASRecRecommender(target="future")
    drawn = torch.cat([future._targets(batch, gen) for _ in range(200)])
    later = {2: {2, 3, 4}, 3: {3, 4}, 4: {4}}  # seq position of items 1, 2, 3 -> later items
    for col, allowed in later.items():
        assert set(drawn[:, col].tolist()) == allowed


def test_dssm_pair_history_by_hand():
    """The user-tower input of each training pair: all other recent items, or those before it."""
    import torch

    rows, items = np.array([0, 0, 0, 1, 1]), np.array([5, 6, 7, 8, 9])  # time-ordered per user
    pairs = torch.arange(5)
    before = DSSMRecommender(max_len=2, history="before")._pair_history(rows, items, 2, "cpu")
    assert before(pairs).tolist() == [[0, 0], [0, 5], [5, 6], [0, 0], [0, 8]]
    others = DSSMRecommender(max_len=2)
    others._history = torch.as_tensor(padded_history(rows, items, 2, 2))  # [[6, 7], [8, 9]]
    history_of = others._pair_history(rows, items, 2, "cpu")
    assert history_of(pairs).tolist() == [[6, 7], [0, 7], [6, 0], [0, 9], [8, 0]]


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="heads"):
        SASRecRecommender(dim=10, heads=3)
    with pytest.raises(ValueError, match="target"):
        SASRecRecommender(target="past")
    with pytest.raises(ValueError, match="epochs"):
        DSSMRecommender(epochs=0)
    with pytest.raises(ValueError, match="history"):
        DSSMRecommender(history="after")
    for cls in (SASRecRecommender, DSSMRecommender):
        with pytest.raises(ValueError, match="device"):
            cls(device="tpu")
    with pytest.raises(ValueError, match="loss"):
        SASRecRecommender(loss="bpr")


def test_device_cuda_without_a_gpu_is_a_clear_error():
    import torch

    from baselines._torch import setup

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no GPU"):
        setup(tiny(), "cuda")
    assert str(setup(tiny(), "auto")) == "cpu"


def test_inner_validation_holds_out_each_chosen_users_latest_items():
    from baselines._torch import inner_validation

    # user 0: 5 items, user 1: 2 items (too few), user 2: 10 items; 1-based item columns
    rows = np.array([0] * 5 + [1] * 2 + [2] * 10)
    items = np.array([1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 8, 3, 9])
    fit_rows, fit_items, (users, truth, seen) = inner_validation(rows, items, 3, 10, 0.2, seed=0)
    assert users.tolist() == [0, 2]  # user 1 has fewer than three interactions
    # user 0 keeps 4 (floor(5 * 0.2) = 1 held out), user 2 keeps 8
    assert fit_rows.tolist() == [0] * 4 + [1] * 2 + [2] * 8
    assert fit_items.tolist() == [1, 2, 3, 4, 6, 7, 1, 2, 3, 4, 5, 6, 7, 8]
    # held-out item 3 of user 2 is already in their fit part: not in the truth (0-based columns)
    assert truth.toarray()[0].nonzero()[0].tolist() == [4]
    assert truth.toarray()[1].nonzero()[0].tolist() == [8]
    assert seen.toarray()[1].nonzero()[0].tolist() == list(range(8))
    assert inner_validation(rows, items, 3, 0, 0.2, seed=0)[2] is None


def test_valid_ndcg_by_hand():
    import scipy.sparse as sp

    from baselines._torch import valid_ndcg

    # two users, 4 items; scores fixed; user 0 has seen item 0 (masked), truth {1, 3}
    scores = np.array([[9.0, 1.0, 5.0, 3.0], [4.0, 3.0, 2.0, 1.0]], dtype=np.float32)
    truth = sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    value = valid_ndcg(lambda h: scores[h[:, 0]], np.array([[0], [1]]), truth, seen, k=2)
    # user 0's top 2: item 2 (miss), item 3 (hit at rank 2); ideal 1 + 1/log2(3); user 1 ignored
    assert value == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_sasrec_gbce_with_t0_is_binary_cross_entropy():
    """gSASRec's beta is 1 at t = 0: plain BCE of the positive against every negative."""
    import torch
    from torch.nn import functional as F

    model = SASRecRecommender(loss="gbce", negatives=3, gbce_t=0.0, dim=4, heads=1)
    from baselines.sasrec import _Net

    net = _Net(10, 4, 3, 1, 1, 0.0)
    hidden = torch.randn(5, 4)
    target = torch.tensor([0, 1, 2, 3, 4])
    gen = torch.Generator().manual_seed(1)
    loss = model._loss(net, hidden, target, 10, gen)
    neg = torch.randint(0, 10, (5, 3), generator=torch.Generator().manual_seed(1))
    w = net.item.weight[1:]
    pos = (hidden * w[target]).sum(-1)
    other = torch.einsum("nd,nkd->nk", hidden, w[neg]).masked_fill(neg == target[:, None], -1e9)
    expected = (
        F.binary_cross_entropy_with_logits(pos, torch.ones(5), reduction="none")
        + F.binary_cross_entropy_with_logits(other, torch.zeros(5, 3), reduction="none").sum(1)
    ).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_sasrec_early_stopping_keeps_the_best_epoch():
    model = SASRecRecommender(**{**FAST["sasrec"], "epochs": 6, "patience": 2, "lr": 0.05})
    model.fit(tiny())
    scores = [h["valid_ndcg"] for h in model.history_]
    assert model.best_epoch_ == 1 + int(np.argmax(scores))
    # stopped `patience` epochs after the best one, or ran out of epochs
    assert len(scores) == min(6, model.best_epoch_ + 2)


def chains(n_users: int = 120, n_items: int = 40, length: int = 12, seed: int = 0) -> TrainData:
    """Sequential data: each user walks item j -> j + 1 (mod n_items) from a random start, one
    hour apart, so the next item is fully predictable from the last one."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, n_items, n_users)
    steps = np.arange(length)
    users = np.repeat(np.arange(n_users), length)
    items = ((start[:, None] + steps[None, :]) % n_items).reshape(-1)
    t0 = datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "user_id": users.astype(np.int64),
            "item_id": items.astype(np.int64),
            "timestamp": pl.Series(
                [t0 + timedelta(hours=int(h)) for h in np.tile(steps, n_users)],
                dtype=pl.Datetime("us"),
            ),
            "weight": pl.Series(np.ones(len(users)), dtype=pl.Float32),
        }
    )
    return TrainData(frame, seed=seed, n_threads=1)


def test_models_beat_random_on_predictable_data():
    """Fast check that training learns: hold out each user's last 3 items; SASRec (and DSSM,
    whose user history points to the neighbouring items) rank them far above random."""
    data = chains()
    inter = data.interactions.sort("user_id", "timestamp")
    last = pl.int_range(pl.len()).reverse().over("user_id") < 3
    train = TrainData(inter.filter(~last), seed=0, n_threads=1)
    truth = inter.filter(last).select("user_id", "item_id")
    users = truth.get_column("user_id").unique()
    params = {
        "sasrec": {
            "epochs": 15,
            "dim": 16,
            "max_len": 10,
            "batch_size": 32,
            "lr": 0.01,
            "valid_users": 0,
        },
        "dssm": {"epochs": 15, "dim": 16, "max_len": 4, "batch_size": 128},
    }
    scores = {"random": _ndcg10(plugins.build("random").fit(train).recommend(users, 10), truth)}
    for name, p in params.items():
        scores[name] = _ndcg10(CLASSES[name](**p).fit(train).recommend(users, 10), truth)
    assert scores["sasrec"] > 0.5 and scores["sasrec"] > 3 * scores["random"], scores
    assert scores["dssm"] > 2 * scores["random"], scores


def _ndcg10(recs: pl.DataFrame, truth: pl.DataFrame) -> float:
    """NDCG@10 of the lists, by harness.metrics."""
    from harness.metrics import evaluate
    from harness.recs import validate_recommendations

    normalised, _ = validate_recommendations(recs, source="test", k=10)
    return evaluate(normalised, truth, ks=(10,)).metrics["all"]["ndcg@10"]


def test_sasrec_epoch_plan_by_hand(monkeypatch):
    """4 windows with 12 real items hold 8 targets: 2 per window, 20 units of softmax work each
    over 10 items. EPOCH_WORK 50 -> 2 windows per epoch; a budget of 100 -> 2 epochs."""
    import torch

    import baselines.sasrec as sasrec_module

    monkeypatch.setattr(sasrec_module, "EPOCH_WORK", 50)
    windows = torch.arange(1, 13).reshape(4, 3)  # no padding (0): 12 real items
    model = SASRecRecommender(batch_size=1, work_budget=100)
    assert model._epoch_plan(windows, 10, 100) == (2, 2)
    assert SASRecRecommender(batch_size=1, epoch_windows=3, work_budget=100)._epoch_plan(
        windows, 10, 100
    ) == (3, 1)
    assert SASRecRecommender(batch_size=1, work_budget=0)._epoch_plan(windows, 10, 7) == (2, 7)
    # never fewer than a batch, never more than there are
    assert SASRecRecommender(batch_size=3, work_budget=0)._epoch_plan(windows, 10, 7) == (3, 7)
    assert SASRecRecommender(epoch_windows=9, work_budget=0)._epoch_plan(windows, 10, 7) == (4, 7)


def test_sasrec_work_budget_caps_the_epochs():
    model = SASRecRecommender(**{**FAST["sasrec"], "epochs": 6, "valid_users": 0, "work_budget": 1})
    model.fit(tiny())
    assert len(model.history_) == 1  # without the budget: all 6 epochs (no early stopping)
    model = SASRecRecommender(**{**FAST["sasrec"], "epochs": 3, "valid_users": 0})
    model.fit(tiny())
    assert len(model.history_) == 3


def test_dssm_epoch_pairs_bounds_the_steps(monkeypatch):
    """epoch_pairs 8 at batch 4: two steps per epoch, whatever the number of train pairs."""
    calls = []
    original = DSSMRecommender._loss

    def counting(self, *args):
        calls.append(len(args[2]))
        return original(self, *args)

    monkeypatch.setattr(DSSMRecommender, "_loss", counting)
    data = tiny()
    DSSMRecommender(**{**FAST["dssm"], "batch_size": 4, "epoch_pairs": 8}).fit(data)
    assert calls == [4] * 4  # 2 epochs x 2 steps of 4 pairs
    calls.clear()
    DSSMRecommender(**{**FAST["dssm"], "batch_size": 64, "epoch_pairs": 0}).fit(data)
    n = data.interactions.height
    assert sum(calls) == 2 * n and len(calls) == 2 * -(-n // 64)
    with pytest.raises(ValueError, match="epoch_pairs"):
        DSSMRecommender(epoch_pairs=-1)


def test_torch_threads_default_to_one_and_never_exceed_the_run():
    import torch

    from baselines._torch import setup

    before = torch.get_num_threads()
    try:
        two = TrainData(tiny().interactions, seed=0, n_threads=2)
        setup(two, "cpu")
        assert torch.get_num_threads() == 1  # the default cap
        setup(two, "cpu", threads=0)
        assert torch.get_num_threads() == 2  # every core the run allows
        setup(TrainData(tiny().interactions, seed=0, n_threads=1), "cpu", threads=4)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        SASRecRecommender(threads=-1)
