"""`--dialect`: harness reproduces other libraries' numbers.

The JSON files in tests/fixtures/dialects/ hold what each library itself produced on the fixture
files beside them (benchmarks/dialects_fixtures.py ran them in their own venvs); these tests need
no peer installed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.metrics import evaluate, quicksort
from harness.metrics.dialects import DIALECTS, get, order_ties
from harness.scoring import score_files

FIXTURES = Path(__file__).parent / "fixtures" / "dialects"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _score(directory: Path, dialect: str, ks, *extra) -> dict:
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
        *extra,
    ]
    result = CliRunner().invoke(main, [*args, *(a for k in ks for a in ("--k", str(k)))])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _peers():
    for case in CASES:
        stored = json.loads((FIXTURES / f"{case}.json").read_text())
        for dialect, peer in sorted(stored["peers"].items()):
            yield pytest.param(case, dialect, peer, stored["ks"], id=f"{case}-{dialect}")


@pytest.mark.parametrize(("case", "dialect", "peer", "ks"), list(_peers()))
def test_dialect_reproduces_the_library(case, dialect, peer, ks):
    if "error" in peer:
        pytest.skip(f"{dialect} could not be run: {peer['error']}")
    ours = _score(FIXTURES / case, dialect, ks)["metrics"]
    assert peer["metrics"], "the library produced no values"
    for name, value in peer["metrics"].items():
        assert name in ours, f"{dialect} {name} missing from harness"
        assert math.isclose(ours[name], value, rel_tol=0, abs_tol=1e-12), (name, ours[name], value)
    # and nothing the library does not offer is reported in its name
    offered = {m.split("@")[0] for m in peer["metrics"]}
    assert {m.split("@")[0] for m in ours} <= offered


def test_fixtures_cover_every_peer_dialect():
    assert {"edge", "edge-strings", "random", "long-ties"} <= set(CASES)
    for case in CASES:
        stored = json.loads((FIXTURES / f"{case}.json").read_text())
        assert set(stored["peers"]) == set(DIALECTS) - {"harness"}


def test_default_dialect_is_harness_and_unchanged():
    directory = FIXTURES / "edge"
    default = CliRunner().invoke(
        main,
        [
            "score",
            "--recs",
            str(directory / "recs.csv"),
            "--truth",
            str(directory / "truth.csv"),
            "--k",
            "3",
            "--json",
        ],
    )
    explicit = _score(directory, "harness", (3,))
    no_catalog = dict(explicit["metrics"])
    for key in list(no_catalog):
        if key.split("@")[0] in ("coverage", "gini", "novelty"):
            no_catalog.pop(key)
    assert json.loads(default.output)["metrics"] == no_catalog


RECS = pl.DataFrame(
    {
        "user_id": [1, 1, 1, 2, 2, 3],
        "item_id": [10, 11, 12, 20, 21, 30],
        "rank": [1, 2, 3, 1, 2, 1],
        "score": [3.0, 2.0, 1.0, 1.0, 1.0, 1.0],
    }
)
# user 1: 4 relevant, hits at ranks 2, 3; user 2: item 21 twice; user 4: no list; 3: not in truth
TRUTH = pl.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 4], "item_id": [11, 12, 13, 14, 21, 21, 40]})


def _all(dialect, k):
    return evaluate(RECS, TRUTH, ks=(k,), dialect=dialect).metrics["all"]


def test_hand_computed_map_normalisers():
    # per-user sums of precision at hits, k = 3: user 1: 1/2 + 2/3; user 2: 1/2; user 4: 0
    ap1, ap2 = 0.5 + 2 / 3, 0.5
    assert _all("harness", 3)["map@3"] == pytest.approx((ap1 / 3 + ap2 / 1 + 0) / 3, abs=1e-12)
    assert _all("ranx", 3)["map@3"] == pytest.approx((ap1 / 4 + ap2 / 1 + 0) / 3, abs=1e-12)
    # trec: only users with a list (1, 2); n_u; user 2's tie (20, 21) puts 21 first: AP 1/1
    assert _all("trec", 3)["map@3"] == pytest.approx((ap1 / 4 + 1.0) / 2, abs=1e-12)
    # lenskit: lists of truth users (1, 2: its AveragePrecision fails on a list without test
    # items); min(n_u, list length, k) with n_u counting truth rows: user 1 min(4, 3, 3),
    # user 2 min(2, 2, 3)
    assert _all("lenskit", 3)["map@3"] == pytest.approx((ap1 / 3 + ap2 / 2) / 2, abs=1e-12)


def test_hand_computed_repeats_ties_and_weights():
    # rectools counts the repeated pair twice: user 2 precision@2 = 2 hits / 2
    rt = evaluate(RECS, TRUTH, ks=(2,), dialect="rectools").per_user
    assert rt.filter(pl.col("user_id") == 2).get_column("precision@2").item() == 1.0
    assert rt.filter(pl.col("user_id") == 2).get_column("recall@2").item() == 1.0
    # trec breaks the tie of user 2 (items 20, 21, both score 1) by id as text, descending:
    # 21 first, so mrr@1 of user 2 is 1 in trec and 0 in harness
    trec = evaluate(RECS, TRUTH, ks=(1,), dialect="trec").per_user
    assert trec.filter(pl.col("user_id") == 2).get_column("mrr@1").item() == 1.0
    assert (
        evaluate(RECS, TRUTH, ks=(1,))
        .per_user.filter(pl.col("user_id") == 2)
        .get_column("mrr@1")
        .item()
        == 0.0
    )
    # lenskit ndcg: ranks 1 and 2 weigh 1; user 1 hits at 2, 3, ideal over min(4, 3) = 3
    lk = evaluate(RECS, TRUTH, ks=(3,), dialect="lenskit").per_user
    want = (1 + 1 / math.log2(3)) / (1 + 1 + 1 / math.log2(3))
    assert lk.filter(pl.col("user_id") == 1).get_column("ndcg@3").item() == pytest.approx(want)
    # rectools ndcg: ideal over k positions whatever n_u; user 2 (n = 2 rows) hit at 2 counted twice
    rt3 = evaluate(RECS, TRUTH, ks=(3,), dialect="rectools").per_user
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert rt3.filter(pl.col("user_id") == 2).get_column("ndcg@3").item() == pytest.approx(
        2 / math.log2(3) / ideal
    )


def test_users_averaged():
    # the list of user 3 (not in truth) counts in lenskit only; user 4 (no list) not in trec
    assert _all("harness", 1)["hit_rate@1"] == pytest.approx(0 / 3)
    assert _all("lenskit", 3)["hit_rate@3"] == pytest.approx(2 / 3)  # users 1, 2, 3
    assert _all("trec", 3)["hit_rate@3"] == pytest.approx(2 / 2)  # users 1, 2
    assert _all("ranx", 3)["hit_rate@3"] == pytest.approx(2 / 3)  # users 1, 2, 4


def test_every_dialect_declares_its_metrics():
    for d in DIALECTS.values():
        assert set(d.metrics) <= {
            "precision",
            "recall",
            "map",
            "ndcg",
            "mrr",
            "hit_rate",
            "novelty",
            "diversity",
            "coverage",
            "gini",
        }
    assert "mrr" not in get("msrec").metrics
    with pytest.raises(ValueError, match="unknown dialect"):
        get("nope")


def test_missing_metrics_are_named_not_filled():
    directory = FIXTURES / "edge"
    out = _score(directory, "msrec", (5,))
    assert "mrr@5" not in out["metrics"] and "gini@5" not in out["metrics"]
    result = CliRunner().invoke(
        main,
        [
            "score",
            "--recs",
            str(directory / "recs.csv"),
            "--truth",
            str(directory / "truth.csv"),
            "--dialect",
            "msrec",
            "--k",
            "5",
        ],
    )
    assert result.exit_code == 0
    assert "has no mrr, hit_rate" in result.output


def test_unknown_dialect_is_one_error_line():
    directory = FIXTURES / "edge"
    result = CliRunner().invoke(
        main,
        [
            "score",
            "--recs",
            str(directory / "recs.csv"),
            "--truth",
            str(directory / "truth.csv"),
            "--dialect",
            "sklearn",
        ],
    )
    assert result.exit_code != 0
    assert "sklearn" in result.output and "Traceback" not in result.output


def _lists(truth: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Lists of up to 10 items per truth user: some relevant, some not, tied scores."""
    import numpy as np

    rng = np.random.default_rng(seed)
    items = truth.get_column("item_id").unique().sort()
    users = truth.get_column("user_id").unique().sort()
    n = users.len() * 10
    frame = pl.DataFrame(
        {
            "user_id": users.to_numpy().repeat(10),
            "item_id": items.to_numpy()[rng.integers(0, items.len(), n)],
            "score": rng.integers(0, 4, n).astype(float),
        }
    )
    return frame.unique(["user_id", "item_id"], keep="first", maintain_order=True)


def test_leaderboard_in_a_dialect_rescores_the_stored_lists(cli, home, dataset, tmp_path):
    """The board read with --dialect X equals `harness score --dialect X` on the same files,
    for every dialect, without running a model; a run without stored lists is named."""
    from harness.store.splits import load_split

    prepared = load_split(home, dataset, None, parts=("truth", "train"))
    truth, train = tmp_path / "truth.parquet", tmp_path / "train.parquet"
    prepared.truth.write_parquet(truth)
    prepared.train.select("user_id", "item_id").write_parquet(train)
    files = {}
    for seed, name in ((1, "model-a"), (2, "model-b")):
        files[name] = tmp_path / f"{name}.parquet"
        _lists(prepared.truth, seed).write_parquet(files[name])
        cli(
            "score",
            "--recs",
            str(files[name]),
            "--dataset",
            dataset,
            "--name",
            name,
            "--k",
            "5",
            "--k",
            "10",
            "--json",
        )
    harness_board = json.loads(cli("leaderboard", "--dataset", dataset, "--json").stdout)
    for dialect in DIALECTS:
        metric = "ndcg@10"
        board = json.loads(
            cli("leaderboard", "--dataset", dataset, "--dialect", dialect, "--json").stdout
        )
        assert board["dialect"] == dialect
        for row in board["rows"]:
            scored = json.loads(
                cli(
                    "score",
                    "--recs",
                    str(files[row["recommender"]]),
                    "--truth",
                    str(truth),
                    "--catalog",
                    str(train),
                    "--k",
                    "5",
                    "--k",
                    "10",
                    "--dialect",
                    dialect,
                    "--json",
                ).stdout
            )["metrics"]
            for name, value in row["metrics"].items():
                assert value == pytest.approx(scored[name], abs=1e-12), (dialect, name)
            assert set(row["metrics"]) <= set(scored)
            assert metric in row["metrics"]
            if dialect != "harness":  # the stored per-user values are harness'
                assert row["ci"] is None and row["rank_band"] is None
    # the dialects really differ here (rectools' NDCG ideal over k positions)
    rt = json.loads(
        cli("leaderboard", "--dataset", dataset, "--dialect", "rectools", "--json").stdout
    )
    assert rt["rows"][0]["metrics"]["ndcg@10"] != harness_board["rows"][0]["metrics"]["ndcg@10"]
    # a metric the dialect does not offer is a one-line error
    bad = cli(
        "leaderboard", "--dataset", dataset, "--dialect", "msrec", "--metric", "mrr@10", expect=1
    )
    assert bad.stderr.startswith("error: ") and "msrec has no mrr" in bad.stderr


def test_leaderboard_dialect_names_runs_without_lists(cli, board):
    out = cli("leaderboard", "--dataset", board, "--dialect", "ranx", "--json")
    data = json.loads(out.stdout)
    assert all(row["metrics"]["ndcg@10"] is None for row in data["rows"])
    assert "stored lists not found" in out.stderr


def test_score_dataset_refuses_a_dialect(cli, dataset, tmp_path):
    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\n1,1,1.0\n")
    out = cli(
        "score",
        "--recs",
        str(recs),
        "--dataset",
        dataset,
        "--name",
        "x",
        "--dialect",
        "trec",
        expect=1,
    )
    assert out.stderr.startswith("error: ") and "leaderboard" in out.stderr


NUMBA = json.loads((FIXTURES.parent / "numba_argsort.json").read_text())["lists"]


@pytest.mark.parametrize("chunk_rows", [1 << 20, 150])
def test_quicksort_reproduces_numbas_argsort(monkeypatch, chunk_rows):
    # numba's np.argsort (an unstable quicksort) on lists of 0-200 tied keys, as numba itself
    # returned them (benchmarks/dialects_fixtures.py --numba); all lists in one call, sorted in
    # one chunk or in chunks of whole lists
    monkeypatch.setattr(quicksort, "CHUNK_ROWS", chunk_rows)
    keys = np.concatenate([np.asarray(x["keys"], dtype=float) for x in NUMBA])
    starts = np.cumsum([0, *(len(x["keys"]) for x in NUMBA)])
    got = quicksort.argsort(keys, starts)
    for x, lo, hi in zip(NUMBA, starts[:-1], starts[1:]):
        assert (got[lo:hi] - lo).tolist() == x["argsort"], x["keys"]

    # the fixture does exercise the instability: long lists with ties leave the input order
    def stable(x):
        return sorted(range(len(x["keys"])), key=lambda i: x["keys"][i])

    assert sum(x["argsort"] != stable(x) for x in NUMBA) > 20
    assert all(x["argsort"] == stable(x) for x in NUMBA if len(x["keys"]) <= 15)


def _numba(keys) -> list[int]:
    return next(x["argsort"] for x in NUMBA if x["keys"] == keys)


def test_ranx_orders_equal_scores_from_the_file_order_sorted_twice(tmp_path):
    # 200 equal scores: ranx's Run() sorts each list with numba's quicksort (permutation p) and
    # make_comparable sorts the result again, so rank j holds the file's row p[p[j]] (for 16
    # equal scores p[p[j]] happens to be j)
    p = _numba([0.0] * 200)
    rows = pl.DataFrame({"user_id": [1] * 200, "item_id": range(100, 300), "score": [2.0] * 200})
    for name, frame in (("file", rows), ("reversed", rows.reverse())):
        recs = tmp_path / f"{name}.csv"
        frame.write_csv(recs)
        items = frame.get_column("item_id").to_list()
        ranked = [items[p[p[j]]] for j in range(200)]
        assert ranked[:5] != items[:5]
        truth = tmp_path / "truth.csv"
        pl.DataFrame({"user_id": [1, 1], "item_id": [ranked[0], ranked[4]]}).write_csv(truth)
        ranx = score_files(recs, truth, ks=(1, 10), dialect="ranx").evaluation
        assert not [n for n in ranx.notices if "equal scores" in n or "tie" in n]
        assert ranx.metrics["all"]["mrr@1"] == 1.0
        assert ranx.metrics["all"]["map@10"] == pytest.approx((1 + 2 / 5) / 2, abs=1e-15)
        # the file order itself (RecBole keeps it) ranks them otherwise
        recbole = score_files(recs, truth, ks=(10,), dialect="recbole").evaluation
        assert recbole.metrics["all"]["map@10"] != ranx.metrics["all"]["map@10"]


def test_ranx_sorts_stored_lists_from_their_rank_order():
    # lists without their file (a stored run, read by `leaderboard --dialect ranx`) are sorted
    # from rank order: keys already ascending, so both sorts apply the same permutation
    keys = next(x["keys"] for x in NUMBA if len(x["keys"]) > 30 and x["keys"] == sorted(x["keys"]))
    assert len(set(keys)) < len(keys)
    p = _numba(keys)
    n = len(keys)
    recs = pl.DataFrame(
        {
            "user_id": [7] * n,
            "item_id": range(n),
            "rank": range(1, n + 1),
            "score": [-k for k in keys],
        }
    )
    ranked = order_ties(recs, get("ranx"))
    assert ranked.sort("rank").get_column("item_id").to_list() == [p[p[j]] for j in range(n)]
    assert ranked.get_column("rank").sort().to_list() == list(range(1, n + 1))
    # a list of at most 15 items keeps harness's order (numba insertion-sorts it: stable)
    short = recs.head(15)
    assert order_ties(short, get("ranx")).get_column("item_id").to_list() == list(range(15))
