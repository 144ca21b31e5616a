"""Choose the two-stage ranker's settings on a validation split carved from train (never the truth).

    nice -n 10 python benchmarks/two_stage_search.py --home H [--base candidates=200,...] \\
        'learning_rate=0.05,num_leaves=15' 'learning_rate=0.02,n_estimators=400' \\
        'drop=_score_norm' ...

Data: as ``benchmarks/neural.py``: the *train* part of the prepared split, cut again per user by
time (each user's latest ``--ratio``); the test truth is never loaded. The two-stage model (built
with ``--base``) computes its labelled training frame (generators fitted on each inner window's
past, features, labels) and its candidates with features for the validation users *once*; every
ranker setting then only trains LightGBM on that frame and reorders those candidates. A setting is
``key=value`` pairs of the model's ranker attributes (``n_estimators``, ``learning_rate``,
``num_leaves``, ``min_child_samples``, ``bagging``, ``rankers``) plus ``drop=REGEX`` to leave the
matching features out (``;`` separates several regexes). Each row: mean NDCG@10 on the
validation users, the paired difference to ``ease`` (the strongest generator on MovieLens) with
a bootstrap 95% interval over users, the same to the first setting, and whether 1 and 2 LightGBM threads give identical scores
(``--threads-check``).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import polars as pl

from harness.api import TrainData, build_recommender

_spec = importlib.util.spec_from_file_location(
    "neural_bench", Path(__file__).with_name("neural.py")
)
neural = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(neural)

K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="key=value,key=value (ranker settings)")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--split", default=None)
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--base", default="", help="two-stage parameters for the shared frame")
    parser.add_argument("--threads-check", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from harness.store.splits import load_split

    split = load_split(args.home, args.dataset, args.split, parts=("train", "users", "items"))
    fit_part, truth = neural.inner_split(split.train, args.ratio)
    users = truth.get_column("user_id").unique().sort()
    data = TrainData(
        fit_part, users=split.users, items=split.items, cutoff=None, seed=args.seed, n_threads=1
    )
    print(f"inner split: fit {fit_part.height} rows, validation {users.len()} users", flush=True)
    rng = np.random.default_rng(0)
    ease = build_recommender("ease").fit(data)
    base_scores = neural.per_user_ndcg(ease.recommend(users, K), truth, fit_part)
    print(f"{'ease':60} ndcg@{K} {base_scores.get_column(f'ndcg@{K}').mean():.4f}", flush=True)

    _, params = neural.parse("two-stage:" + args.base)
    started = time.perf_counter()
    model = build_recommender("two-stage", **params)
    frame = model.training_frame(data)
    model.serve_on(data, features=True)
    cands = model.candidate_features(users, model.candidates)
    print(
        f"frame {frame.height} rows x {len(frame.columns)} columns, validation candidates "
        f"{cands.height}; pool recall {model.candidate_recall_}; "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    defaults: dict[str, object] = {}
    first_scores = None
    all_features = [c for c in frame.columns if c not in ("user_id", "item_id", "label", "rrf")]
    for spec in args.settings or [""]:
        _, setting = neural.parse("x:" + spec)
        drop = [re.compile(r) for r in setting.pop("drop", "").split(",") if r]
        for key, value in defaults.items():  # each setting starts from the defaults
            setattr(model, key, value)
        for key, value in setting.items():
            current = getattr(model, key)
            defaults.setdefault(key, current)
            setattr(model, key, type(current)(value))
        kept = [c for c in all_features if not any(r.search(c) for r in drop)]
        start = time.perf_counter()
        model._train_ranker(frame.select("user_id", "item_id", "label", *kept), data)
        fit = time.perf_counter() - start
        recs = model.rank(cands, K)
        scores = neural.per_user_ndcg(recs, truth, fit_part)
        same = ""
        if args.threads_check:
            one = model.ranker.predict(neural_matrix(cands, model.features), num_threads=1)
            two_model = build_recommender("two-stage", **params)
            for key in setting:
                setattr(two_model, key, getattr(model, key))
            two_model._train_ranker(
                frame.select("user_id", "item_id", "label", *kept), data, threads=2
            )
            two = two_model.ranker.predict(neural_matrix(cands, model.features), num_threads=2)
            same = f" threads 1 vs 2 identical: {bool(np.array_equal(one, two))}"
        mean = scores.get_column(f"ndcg@{K}").mean()
        first = (
            "" if first_scores is None else f" vs first: {neural.paired(scores, first_scores, rng)}"
        )
        first_scores = scores if first_scores is None else first_scores
        print(
            f"{spec or 'defaults':60} ndcg@{K} {mean:.4f} vs ease: "
            f"{neural.paired(scores, base_scores, rng)}{first}  ranker {fit:.0f} s{same}",
            flush=True,
        )


def neural_matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    from two_stage.model import _matrix

    return _matrix(frame, features)


if __name__ == "__main__":
    main()
