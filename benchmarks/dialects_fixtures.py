"""Conformance of `harness score --dialect X` with the libraries themselves.

    python benchmarks/dialects_fixtures.py                  # fixtures -> tests/fixtures/dialects/
    python benchmarks/dialects_fixtures.py --real           # als/ease/popular lists, embedded data
    python benchmarks/dialects_fixtures.py --peers ranx,trec

Each peer is installed with pip into its own venv, benchmarks/.venv-<dialect> (their pins
conflict: RecTools 0.19.0 wants numpy<2, RecBole torch, LensKit its own stack). The fixture files
(ties, short lists, truth users without a list, a list user not in the truth, repeated truth pairs,
n_u > k, integer and string ids) are written by this script; each peer scores them with its own
code in its venv (`--worker DIALECT DIR`), and the values it produced are stored in
tests/fixtures/dialects/<fixture>.json, which tests/test_dialects.py compares with harness to
1e-12 without any peer installed. `--real` submits als, ease and popular on the embedded dataset
(a temporary home), hands the stored lists, truth and train to every peer, and prints the largest
difference per dialect (the table in docs/metrics.md).

This file is also the worker: the worker part imports only the standard library at module level.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures" / "dialects"
NUMBA_FIXTURE = ROOT / "tests" / "fixtures" / "numba_argsort.json"
KS = (1, 3, 5, 10)
PINS = {  # dialect -> pip requirements of its venv
    "rectools": ["rectools==0.19.0", "pyarrow<18", "pandas"],
    "ranx": ["ranx==0.3.21", "pandas"],
    "trec": ["pytrec-eval-terrier==0.5.11"],
    "msrec": ["recommenders==1.2.1"],
    "lenskit": ["lenskit==2025.8.1"],
    # RecBole 1.2.1 uses np.float (removed in numpy 1.24): older numpy and its stack
    "recbole": [
        "recbole==1.2.1",
        "numpy==1.23.5",
        "pandas==2.0.3",
        "scipy<1.12",
        "scikit-learn<1.4",
    ],
}
DISTRIBUTION = {
    "rectools": "rectools",
    "ranx": "ranx",
    "trec": "pytrec-eval-terrier",
    "msrec": "recommenders",
    "lenskit": "lenskit",
    "recbole": "recbole",
}


# ------------------------------------------------------------------ worker (peer venvs)


def _read(directory: Path, name: str, integer: bool):
    with open(directory / f"{name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    conv = int if integer else str
    for r in rows:
        r["user_id"], r["item_id"] = conv(r["user_id"]), conv(r["item_id"])
        if "score" in r:
            r["score"] = float(r["score"])
    return rows


def _ranked(recs):
    """Each user's list in file order of (score descending, ties keep file order), with ranks: the
    order harness gives a file, handed to libraries that take ranks (RecTools, LensKit)."""
    out, by_user = [], {}
    for i, r in enumerate(recs):
        by_user.setdefault(r["user_id"], []).append((-r["score"], i, r))
    for rows in by_user.values():
        for rank, (_, _, r) in enumerate(sorted(rows, key=lambda t: (t[0], t[1])), 1):
            out.append({**r, "rank": rank})
    return out


def worker(dialect: str, directory: Path) -> dict:
    meta = json.loads((directory / "meta.json").read_text())
    ks, integer = meta["ks"], meta["integer_ids"]
    recs, truth = _read(directory, "recs", integer), _read(directory, "truth", integer)
    train = _read(directory, "train", integer)
    fn = {
        "rectools": _rectools,
        "ranx": _ranx,
        "trec": _trec,
        "msrec": _msrec,
        "lenskit": _lenskit,
        "recbole": _recbole,
    }[dialect]
    from importlib.metadata import version

    metrics = fn(recs, truth, train, ks)
    return {
        "dialect": dialect,
        "library": f"{DISTRIBUTION[dialect]} {version(DISTRIBUTION[dialect])}",
        "metrics": {m: float(v) for m, v in sorted(metrics.items())},
    }


def _rectools(recs, truth, train, ks):
    import pandas as pd
    from rectools.metrics import (
        MAP,
        MRR,
        NDCG,
        CatalogCoverage,
        HitRate,
        MeanInvUserFreq,
        Precision,
        Recall,
        calc_metrics,
    )

    reco = pd.DataFrame(_ranked(recs))[["user_id", "item_id", "rank"]]
    metrics = {}
    for k in ks:
        metrics.update(
            {
                f"precision@{k}": Precision(k),
                f"recall@{k}": Recall(k),
                f"map@{k}": MAP(k),
                f"ndcg@{k}": NDCG(k),
                f"mrr@{k}": MRR(k),
                f"hit_rate@{k}": HitRate(k),
                f"novelty@{k}": MeanInvUserFreq(k),
                f"coverage@{k}": CatalogCoverage(k, normalize=True),
            }
        )
    train_df = pd.DataFrame(train)[["user_id", "item_id"]]
    return calc_metrics(
        metrics,
        reco,
        interactions=pd.DataFrame(truth)[["user_id", "item_id"]],
        prev_interactions=train_df,
        catalog=train_df["item_id"].unique(),
    )


def _ranx(recs, truth, train, ks):
    from ranx import Qrels, Run, evaluate

    qrels, run = {}, {}
    for r in truth:
        qrels.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = 1
    for r in recs:  # in file order: ranx keeps it for equal scores
        run.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = r["score"]
    names = [
        f"{m}@{k}" for k in ks for m in ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")
    ]
    out = evaluate(Qrels(qrels), Run(run), names, make_comparable=True)
    return dict(out)


def ranx_orders(directory: Path) -> dict:
    """ranx on a fixture directory: each list in the order ranx leaves it (after Run() and
    make_comparable) and its per-user values (return_mean=False)."""
    from importlib.metadata import version

    from ranx import Qrels, Run, evaluate

    meta = json.loads((directory / "meta.json").read_text())
    recs, truth = _read(directory, "recs", True), _read(directory, "truth", True)
    qrels, run_dict = {}, {}
    for r in truth:
        qrels.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = 1
    for r in recs:
        run_dict.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = r["score"]
    names = [
        f"{m}@{k}"
        for k in meta["ks"]
        for m in ("precision", "recall", "map", "ndcg", "mrr", "hit_rate")
    ]
    run = Run(run_dict)
    values = evaluate(Qrels(qrels), run, names, return_mean=False, make_comparable=True)
    users = list(run.run.keys())  # make_comparable sorted the run in place, keys as text
    return {
        "library": f"ranx {version('ranx')}",
        "order": {u: list(run.run[u].keys()) for u in users},
        "per_user": {m: dict(zip(users, map(float, values[m]))) for m in names},
    }


def numba_argsorts(seed: int = 5, n_lists: int = 80) -> dict:
    """numba's ``np.argsort(keys)`` (kind quicksort, as ranx calls it in @njit) on lists of 0 to
    200 mostly tied keys: harness.metrics.quicksort reproduces it."""
    from importlib.metadata import version

    import numpy as np
    from numba import njit

    @njit
    def argsort(keys):
        return np.argsort(keys)

    rng = np.random.default_rng(seed)
    lengths = [0, 1, 2, 15, 16, 17, 18, 31, 32, 33, 200, *rng.integers(1, 201, n_lists - 11)]
    lists = []
    for j, n in enumerate(lengths):
        shape = j % 4
        if shape == 0:  # a few distinct keys, any order
            keys = rng.integers(0, int(rng.integers(1, 6)), int(n)) / 2
        elif shape == 1:  # already sorted (a run ranx sorts a second time)
            keys = np.sort(rng.integers(0, 4, int(n))) * 1.0
        elif shape == 2:  # all equal
            keys = np.zeros(int(n))
        else:  # many distinct values with some ties
            keys = rng.integers(0, max(1, int(n) // 2), int(n)) * 0.25
        lists.append({"keys": keys.tolist(), "argsort": argsort(keys).tolist()})
    return {"numba": version("numba"), "lists": lists}


def _trec_order(rows):
    """trec_eval's order: score descending, then document id descending (strcmp)."""
    return sorted(rows, key=lambda r: (r[1], r[0]), reverse=True)


def _trec(recs, truth, train, ks):
    import pytrec_eval

    qrels, run = {}, {}
    for r in truth:
        qrels.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = 1
    for r in recs:
        run.setdefault(str(r["user_id"]), {})[str(r["item_id"])] = r["score"]
    cuts = ",".join(map(str, ks))
    measures = {f"P.{cuts}", f"recall.{cuts}", f"map_cut.{cuts}", f"ndcg_cut.{cuts}"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out = {}
    names = {"P": "precision", "recall": "recall", "map_cut": "map", "ndcg_cut": "ndcg"}
    for k in ks:
        for trec, name in names.items():
            out[f"{name}@{k}"] = sum(v[f"{trec}_{k}"] for v in per_query.values()) / len(per_query)
        # trec_eval's recip_rank and success have no cut at k: it is scored on the run cut at
        # the first k documents in trec_eval's own order
        cut = {q: dict(_trec_order(list(docs.items()))[:k]) for q, docs in run.items()}
        rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        out[f"mrr@{k}"] = sum(v["recip_rank"] for v in rr.values()) / len(rr)
        out[f"hit_rate@{k}"] = sum(v["recip_rank"] > 0 for v in rr.values()) / len(rr)
    return out


def _msrec(recs, truth, train, ks):
    import pandas as pd
    from recommenders.evaluation import python_evaluation as ev
    from recommenders.utils.python_utils import get_top_k_scored_items  # noqa: F401

    true = pd.DataFrame(truth)[["user_id", "item_id"]].assign(rating=1.0)
    pred = pd.DataFrame(recs)[["user_id", "item_id", "score"]].rename(
        columns={"score": "prediction"}
    )
    train_df = pd.DataFrame(train)[["user_id", "item_id"]].assign(rating=1.0)
    cols = dict(col_user="user_id", col_item="item_id")
    out = {}
    for k in ks:
        args = dict(
            rating_true=true,
            rating_pred=pred,
            k=k,
            col_rating="rating",
            col_prediction="prediction",
            relevancy_method="top_k",
            **cols,
        )
        out[f"precision@{k}"] = ev.precision_at_k(**args)
        out[f"recall@{k}"] = ev.recall_at_k(**args)
        out[f"map@{k}"] = ev.map_at_k(**args)
        out[f"ndcg@{k}"] = ev.ndcg_at_k(**args)
        top = ev.get_top_k_items(pred, col_user="user_id", col_rating="prediction", k=k)
        top = top[["user_id", "item_id", "prediction"]]
        out[f"novelty@{k}"] = ev.novelty(train_df, top, **cols)
        out[f"coverage@{k}"] = ev.catalog_coverage(train_df, top, **cols)
    return out


def _lenskit(recs, truth, train, ks):
    import pandas as pd
    from lenskit.data import ItemListCollection
    from lenskit.metrics import NDCG, Hit, Precision, Recall, RecipRank, RunAnalysis

    try:
        from lenskit.metrics import AveragePrecision
    except ImportError:  # pragma: no cover - older layouts
        from lenskit.metrics.ranking import AveragePrecision

    ranked = pd.DataFrame(_ranked(recs))[["user_id", "item_id", "rank"]]
    truth_df = pd.DataFrame(truth)[["user_id", "item_id"]]
    test = ItemListCollection.from_df(truth_df, ["user_id"])
    out = {}
    # AveragePrecision raises ZeroDivisionError on a list whose user has no test items
    # (min(len(test), len(recs)) = 0), so it is measured on the lists of truth users only
    for metrics, lists in (
        (
            (
                (Precision, "precision"),
                (Recall, "recall"),
                (NDCG, "ndcg"),
                (RecipRank, "mrr"),
                (Hit, "hit_rate"),
            ),
            ranked,
        ),
        (((AveragePrecision, "map"),), ranked[ranked["user_id"].isin(set(truth_df["user_id"]))]),
    ):
        analysis = RunAnalysis()
        for k in ks:
            for cls, name in metrics:
                analysis.add_metric(cls(k), label=f"{name}@{k}")
        result = analysis.measure(ItemListCollection.from_df(lists, ["user_id"]), test)
        out.update(dict(result.list_summary()["mean"]))
    return out


def _recbole(recs, truth, train, ks):
    import numpy as np
    from recbole.evaluator.metrics import MAP, MRR, NDCG, Hit, Precision, Recall

    # RecBole's collector: one row per evaluated (truth) user, pos_index[u, i] = the i-th item of
    # the top-k list is a positive; pos_len = distinct positives. Lists shorter than k are padded
    # with misses (RecBole always ranks the full catalogue, so it never has a short list).
    kmax = max(ks)
    users = sorted({r["user_id"] for r in truth}, key=str)
    index = {u: i for i, u in enumerate(users)}
    positives = {(r["user_id"], r["item_id"]) for r in truth}
    pos_len = np.zeros(len(users), dtype=np.int64)
    for u, _ in positives:
        pos_len[index[u]] += 1
    pos_index = np.zeros((len(users), kmax), dtype=bool)
    for r in _ranked(recs):
        if r["user_id"] in index and r["rank"] <= kmax:
            pos_index[index[r["user_id"]], r["rank"] - 1] = (
                r["user_id"],
                r["item_id"],
            ) in positives
    config = {"topk": list(ks), "metric_decimal_place": 12}
    out = {}
    for cls, name in (
        (Precision, "precision"),
        (Recall, "recall"),
        (MAP, "map"),
        (NDCG, "ndcg"),
        (MRR, "mrr"),
        (Hit, "hit_rate"),
    ):
        metric = cls(config)
        values = (
            metric.metric_info(pos_index, pos_len)
            if name in ("recall", "map", "ndcg")
            else metric.metric_info(pos_index)
        )
        means = values.mean(axis=0)
        for k in ks:
            out[f"{name}@{k}"] = float(means[k - 1])
    return out


# ------------------------------------------------------------------ fixtures (harness venv)


def fixture_rows(string_ids: bool):
    """The hand-made fixture: every case the dialects disagree on, in 8 users.

    u1: 12 relevant items (n_u > k), 10 listed, hits at 1, 4, 9
    u2: ties: five items share a score; the relevant ones (9, 100) sort differently by text
    u3: a short list (3 items) and 4 relevant items
    u4: in the truth, no list
    u5: a truth pair repeated (item 7 twice), listed first
    u6: a list, not in the truth
    u7: a list without a hit
    u8: one relevant item, listed 10th; an item outside train listed
    """
    recs = []

    def lst(user, items, scores=None):
        scores = scores or [float(len(items) - i) for i in range(len(items))]
        recs.extend({"user_id": user, "item_id": it, "score": s} for it, s in zip(items, scores))

    lst(1, [1, 40, 41, 2, 42, 43, 44, 45, 3, 46])
    lst(2, [10, 100, 9, 55, 8, 60, 61], [5.0, 3.0, 3.0, 3.0, 3.0, 3.0, 1.0])
    lst(3, [20, 70, 21])
    lst(5, [7, 71, 72, 73])
    lst(6, [1, 2, 3])
    lst(7, [80, 81, 82, 83, 84])
    lst(8, [90, 91, 92, 93, 94, 95, 96, 97, 98, 99])
    truth = (
        [(1, i) for i in (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)]
        + [(2, 9), (2, 100), (2, 60)]
        + [(3, i) for i in (20, 21, 22, 23)]
        + [(4, 1), (4, 2)]
        + [(5, 7), (5, 7), (5, 74)]
        + [(7, 5)]
        + [(8, 99)]
    )
    truth = [{"user_id": u, "item_id": i} for u, i in truth]
    train = [
        {"user_id": u, "item_id": i}
        for u, items in {
            1: [7, 8, 9, 10],
            2: [1, 2, 40, 41, 42],
            3: [1, 43, 44, 45, 46, 55],
            9: [1, 20, 70, 71],
            10: [2, 80, 81, 82, 90, 91, 92],
            11: [1, 93, 94, 95, 96, 97, 98, 100, 60, 61],
        }.items()
        for i in items
    ]
    if string_ids:
        for rows in (recs, truth, train):
            for r in rows:
                r["user_id"], r["item_id"] = f"u{r['user_id']}", f"i{r['item_id']}"
    return recs, truth, train


def random_rows(seed: int = 7, n_users: int = 60, n_items: int = 80, length: int = 12):
    """Seeded lists with many tied scores (one decimal), truths of 1-20 items with a few repeats,
    some users without a list and some lists without a truth."""
    import numpy as np

    rng = np.random.default_rng(seed)
    recs, truth, train = [], [], []
    for u in range(n_users):
        if u % 7 != 3:  # every 7th user has no list
            n = int(rng.integers(1, length + 1))
            items = rng.choice(n_items, size=n, replace=False)
            scores = np.round(rng.random(n), 1)
            recs += [
                {"user_id": u, "item_id": int(i), "score": float(s)} for i, s in zip(items, scores)
            ]
        if u % 11 != 5:  # every 11th user has no truth
            m = int(rng.integers(1, 21))
            items = rng.choice(n_items, size=m, replace=False)
            truth += [{"user_id": u, "item_id": int(i)} for i in items]
            if u % 5 == 0:
                truth.append({"user_id": u, "item_id": int(items[0])})
        for i in rng.choice(n_items + 20, size=int(rng.integers(1, 15)), replace=False):
            if i < n_items - 5:  # the last items never appear in train
                train.append({"user_id": u + 1000, "item_id": int(i)})
    return recs, truth, train


def long_ties_rows(seed: int = 11, n_users: int = 30, n_items: int = 400):
    """Lists of 1 to 200 items whose scores are mostly tied (a few distinct values), the rows of
    all users shuffled together (so the file order is neither the rank order nor grouped by user),
    truths of 1-40 items drawn mostly from the lists: ranx orders equal scores in lists of more
    than 15 items with numba's unstable quicksort, from the file order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    recs, truth, train = [], [], []
    lengths = np.concatenate([[1, 2, 15, 16, 17, 31, 200], rng.integers(1, 201, n_users - 7)])
    for u, n in enumerate(lengths):
        items = rng.choice(n_items, size=int(n), replace=False)
        distinct = int(rng.integers(1, 6))  # 1 to 5 distinct scores in the list
        scores = rng.integers(0, distinct, int(n)) / 2
        recs += [
            {"user_id": u, "item_id": int(i), "score": float(s)} for i, s in zip(items, scores)
        ]
        m = int(rng.integers(1, 41))
        pool = np.concatenate([items, rng.choice(n_items, size=m, replace=False)])
        truth += [{"user_id": u, "item_id": int(i)} for i in np.unique(rng.choice(pool, size=m))]
        train += [
            {"user_id": u + 1000, "item_id": int(i)}
            for i in rng.choice(n_items, size=20, replace=False)
        ]
    recs = [recs[i] for i in rng.permutation(len(recs))]
    return recs, truth, train


def write_fixture(name: str, rows, ks, integer: bool) -> Path:
    return write_fixture_in(FIXTURES / name, rows, ks, integer)


def write_fixture_in(directory: Path, rows, ks, integer: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for part, data in zip(("recs", "truth", "train"), rows):
        with open(directory / f"{part}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    (directory / "meta.json").write_text(
        json.dumps({"ks": list(ks), "integer_ids": integer}) + "\n"
    )
    return directory


def venv(dialect: str) -> Path:
    """benchmarks/.venv-<dialect>, created and installed on first use."""
    path = HERE / f".venv-{dialect}"
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS[dialect]], check=True)
    return python


def run_peer(dialect: str, directory: Path) -> dict:
    try:
        python = venv(dialect)
    except subprocess.CalledProcessError as exc:
        return {"dialect": dialect, "error": f"pip install {' '.join(PINS[dialect])} failed: {exc}"}
    proc = subprocess.run(
        [str(python), __file__, "--worker", dialect, str(directory)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"dialect": dialect, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def harness_values(directory: Path, dialect: str, ks) -> dict:
    """harness score --dialect on a fixture directory, as the CLI does it."""
    from click.testing import CliRunner

    from harness.cli import main

    args = [
        "score",
        "--recs",
        str(directory / "recs.csv"),
        "--truth",
        str(directory / "truth.csv"),
        "--catalog",
        str(directory / "train.csv"),
        "--dialect",
        dialect,
        "--json",
    ]
    result = CliRunner().invoke(main, [*args, *(a for k in ks for a in ("--k", str(k)))])
    if result.exit_code:
        raise RuntimeError(f"harness {' '.join(args)}: {result.output}")
    return json.loads(result.output)["metrics"]


def compare(peer: dict, ours: dict) -> tuple[float, list[str]]:
    """Largest |difference| over the metrics the peer reported, and metrics harness lacks."""
    worst, missing = 0.0, []
    for name, value in peer.get("metrics", {}).items():
        if name not in ours:
            missing.append(name)
            continue
        worst = max(worst, abs(ours[name] - value)) if not math.isnan(value) else worst
    return worst, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("DIALECT", "DIR"))
    parser.add_argument("--peers", default=",".join(PINS))
    parser.add_argument("--real", action="store_true", help="als/ease/popular lists, embedded data")
    parser.add_argument("--fixtures", help="comma-separated fixture names (default: all)")
    parser.add_argument(
        "--ties",
        type=int,
        metavar="USERS",
        help="ranx's order of tied scores: USERS random lists of 1-200 mostly tied items, each "
        "list's order and per-user values, harness vs ranx",
    )
    parser.add_argument("--ranx-orders", metavar="DIR", help=argparse.SUPPRESS)  # the worker
    parser.add_argument(
        "--numba",
        action="store_true",
        help=f"write numba's argsort of tied lists to {NUMBA_FIXTURE}",
    )
    parser.add_argument("--numba-argsorts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    if args.numba_argsorts:
        print(json.dumps(numba_argsorts()))
        return
    if args.numba:
        proc = subprocess.run(
            [str(venv("ranx")), __file__, "--numba-argsorts"],
            capture_output=True,
            text=True,
            check=True,
        )
        stored = json.loads(proc.stdout)
        lines = ",\n".join(json.dumps(x, separators=(",", ":")) for x in stored["lists"])
        NUMBA_FIXTURE.write_text(f'{{"numba": "{stored["numba"]}", "lists": [\n{lines}\n]}}\n')
        print(f"{NUMBA_FIXTURE}: {len(stored['lists'])} lists, numba {stored['numba']}")
        return
    if args.ranx_orders:
        print(json.dumps(ranx_orders(Path(args.ranx_orders))))
        return
    if args.ties:
        return ties(args.ties)
    peers = args.peers.split(",")
    if args.real:
        return real(peers)
    fixtures = {
        "edge": (fixture_rows(False), True, KS),
        "edge-strings": (fixture_rows(True), False, KS),
        "random": (random_rows(), True, KS),
        "long-ties": (long_ties_rows(), True, (1, 3, 5, 10, 20, 50, 100)),
    }
    print("| fixture | dialect | library | max abs diff | note |\n| --- | --- | --- | ---: | --- |")
    for name, (rows, integer, ks) in fixtures.items():
        if args.fixtures and name not in args.fixtures.split(","):
            continue
        directory = write_fixture(name, rows, ks, integer)
        path = FIXTURES / f"{name}.json"
        stored = json.loads(path.read_text()) if path.exists() else {"fixture": name, "peers": {}}
        stored["ks"] = list(ks)
        for dialect in peers:
            peer = run_peer(dialect, directory)
            stored["peers"][dialect] = peer
            if "error" in peer:
                print(f"| {name} | {dialect} | - | - | {peer['error']} |")
                continue
            worst, missing = compare(peer, harness_values(directory, dialect, ks))
            note = f"harness lacks {', '.join(missing)}" if missing else ""
            print(f"| {name} | {dialect} | {peer['library']} | {worst:.2e} | {note} |")
        path.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")


def ties(n_users: int) -> None:
    """``--ties``: on ``n_users`` lists of :func:`long_ties_rows` (rows shuffled), the order ranx
    leaves each list in against harness's ranx order, and every per-user value."""
    import polars as pl

    from harness.api import Columns
    from harness.metrics.dialects import get, order_ties
    from harness.recs import validate_truth
    from harness.scoring import dialect_lists, score_files

    ks = (1, 3, 5, 10, 20, 50, 100)
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_fixture_in(Path(tmp), long_ties_rows(n_users=n_users), ks, True)
        proc = subprocess.run(
            [str(venv("ranx")), __file__, "--ranx-orders", str(directory)],
            capture_output=True,
            text=True,
            check=True,
        )
        peer = json.loads(proc.stdout)
        truth = validate_truth(
            pl.read_csv(directory / "truth.csv"), source="truth", keep_repeats=True
        )
        lists, _, _ = dialect_lists(
            directory / "recs.csv", truth, dialect="ranx", recs_name="recs", truth_name="truth"
        )
        ordered = order_ties(lists, get("ranx")).sort(Columns.USER, "rank")
        ours = {
            str(u): [str(i) for i in items]
            for u, items in ordered.group_by(Columns.USER, maintain_order=True)
            .agg(Columns.ITEM)
            .iter_rows()
        }
        per_list = lists.group_by(Columns.USER).agg(
            pl.len().alias("n"), pl.col(Columns.SCORE).n_unique().alias("distinct")
        )
        long_tied = per_list.filter((pl.col("n") > 15) & (pl.col("distinct") < pl.col("n"))).height
        differ = [u for u, order in peer["order"].items() if ours.get(u, []) != order]
        per_user = (
            score_files(directory / "recs.csv", directory / "truth.csv", ks=ks, dialect="ranx")
            .evaluation.per_user.with_columns(pl.col(Columns.USER).cast(pl.Utf8))
            .rows_by_key(Columns.USER, named=True, unique=True)
        )
        worst = max(
            abs(per_user[u][m] - v)
            for m, by_user in peer["per_user"].items()
            for u, v in by_user.items()
        )
        print(
            f"{peer['library']}: {len(peer['order'])} lists ({long_tied} longer than 15 items with "
            f"equal scores, {lists.height} rows); lists whose order differs: "
            f"{len(differ)}; largest per-user difference over {len(peer['per_user'])} metrics: "
            f"{worst:.1e}"
        )


def real(peers) -> None:
    """als, ease, popular submitted on the embedded dataset; every peer on the stored lists."""
    import polars as pl

    from harness.api import Columns
    from harness.datasets import prepare
    from harness.runner import submit
    from harness.store.runs import get_run
    from harness.store.splits import load_split

    ks = (1, 5, 10, 20, 50, 100)
    print(
        "| lists | dialect | library | metrics compared | max abs diff | note |\n"
        "| --- | --- | --- | ---: | ---: | --- |"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        prepare("ml-latest-small", home=home)
        for model, params in (("popular", {}), ("ease", {}), ("als", {"iterations": 10})):
            run = submit(home, model, dataset="ml-latest-small", params=params, k=100)
            prepared = load_split(home, "ml-latest-small", None, parts=("train", "truth"))
            directory = home / model
            directory.mkdir()
            lists = pl.read_parquet(home / get_run(home, run.run_id).recs_path)
            if Columns.SCORE not in lists.columns:
                lists = lists.with_columns((-pl.col("rank")).cast(pl.Float64).alias(Columns.SCORE))
            lists.select(Columns.USER, Columns.ITEM, Columns.SCORE).write_csv(
                directory / "recs.csv"
            )
            prepared.truth.select(Columns.USER, Columns.ITEM).write_csv(directory / "truth.csv")
            prepared.train.select(Columns.USER, Columns.ITEM).write_csv(directory / "train.csv")
            (directory / "meta.json").write_text(json.dumps({"ks": list(ks), "integer_ids": True}))
            for dialect in peers:
                peer = run_peer(dialect, directory)
                if "error" in peer:
                    print(f"| {model} | {dialect} | - | - | - | {peer['error']} |")
                    continue
                worst, missing = compare(peer, harness_values(directory, dialect, ks))
                note = f"harness lacks {', '.join(missing)}" if missing else ""
                print(
                    f"| {model} | {dialect} | {peer['library']} | {len(peer['metrics'])} | "
                    f"{worst:.1e} | {note} |"
                )


if __name__ == "__main__":
    main()
