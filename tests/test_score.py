"""``harness score`` end to end through the CLI."""

import json
import math

import polars as pl
import pytest


@pytest.fixture
def files(tmp_path):
    recs = tmp_path / "recs.parquet"
    pl.DataFrame(
        {"user_id": [1, 1, 2], "item_id": [10, 11, 10], "score": [2.0, 1.0, 1.0]}
    ).write_parquet(recs)
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,11\n2,12\n")
    return recs, truth


def test_json(cli, files):
    recs, truth = files
    out = json.loads(
        cli("score", "--recs", str(recs), "--truth", str(truth), "--k", "2", "--json").stdout
    )
    assert out["metrics"]["precision@2"] == pytest.approx(0.25)
    assert out["metrics"]["mrr@2"] == pytest.approx(0.25)
    assert out["segments"]["all"] == out["metrics"]


def test_table(cli, files):
    recs, truth = files
    assert "ndcg@2" in cli("score", "--recs", str(recs), "--truth", str(truth), "--k", "2").stdout


def test_bad_file(cli, files, tmp_path):
    recs, truth = files
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,score\n1,5,1.0\n1,5,0.5\n")
    r = cli("score", "--recs", str(bad), "--truth", str(truth), expect=1)
    assert (
        r.stderr.startswith("error: ") and str(bad) in r.stderr and len(r.stderr.splitlines()) == 1
    )


def test_catalog_and_item_categories(cli, tmp_path):
    # user 1: list a, b, z (z outside the catalogue), relevant {b}; user 2 (cold: not in the
    # catalogue's users): list a, relevant {c}
    recs = tmp_path / "recs.csv"
    recs.write_text("user_id,item_id,rank\n1,a,1\n1,b,2\n1,z,3\n2,a,1\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,b\n2,c\n")
    catalog = (
        tmp_path / "train.csv"
    )  # 3 train users; items a (2 users), b (1), c (0: listed by id only)
    catalog.write_text("user_id,item_id\n1,a\n3,a\n4,b\n4,c\n")
    cats = tmp_path / "cats.csv"
    cats.write_text("item_id,categories\na,x\nb,x|y\n")
    out = json.loads(
        cli(
            "score",
            "--recs",
            str(recs),
            "--truth",
            str(truth),
            "--k",
            "1",
            "--k",
            "3",
            "--catalog",
            str(catalog),
            "--item-categories",
            str(cats),
            "--json",
        ).stdout
    )
    a = out["metrics"]
    assert a["coverage@1"] == pytest.approx(1 / 3)  # {a} of {a, b, c}
    assert a["coverage@3"] == pytest.approx(2 / 3)  # {a, b}; z is not a train item
    assert a["gini@1"] == pytest.approx(2 / 3)  # exposure sorted [0, 0, 2]
    assert a["gini@3"] == pytest.approx(4 / 9)  # [0, 1, 2]: (0*0 + 0*1 + 2*2) / (3*3)
    nov = lambda c: -math.log2((c + 1) / 4)  # noqa: E731  (N = 3 train users)
    assert a["novelty@1"] == pytest.approx(nov(2))
    assert a["novelty@3"] == pytest.approx(((nov(2) + nov(1) + nov(0)) / 3 + nov(2)) / 2)
    # diversity@3: user 1 only (a, b categorised): 1 - cos([1,0], [1,1]/sqrt2)
    assert a["diversity@3"] == pytest.approx(1 - 1 / math.sqrt(2))
    assert "diversity@1" not in a
    assert (
        out["segments"]["warm"]["hit_rate@3"] == 1.0
        and out["segments"]["cold"]["hit_rate@3"] == 0.0
    )


def test_dataset_stores_external_run_on_leaderboard(cli, home, dataset, tmp_path):
    from harness.store.splits import load_split

    prepared = load_split(home, dataset, None, parts=("truth",))
    perfect = prepared.truth.with_columns(pl.lit(1.0).alias("score"))
    recs = tmp_path / "mine.parquet"
    perfect.write_parquet(recs)
    out = json.loads(
        cli(
            "score",
            "--recs",
            str(recs),
            "--dataset",
            dataset,
            "--name",
            "oracle",
            "--k",
            "10",
            "--json",
        ).stdout
    )
    n = prepared.truth.group_by("user_id").len()["len"]  # every relevant item listed
    assert out["metrics"]["recall@10"] == pytest.approx((n.clip(upper_bound=10) / n).mean())
    assert out["metrics"]["map@10"] == pytest.approx(1.0)
    board = json.loads(
        cli("leaderboard", "--dataset", dataset, "--metric", "recall@10", "--json").stdout
    )
    assert [r["recommender"] for r in board["rows"]] == ["oracle"]
    assert cli("score", "--recs", str(recs), "--dataset", dataset, expect=1).stderr.startswith(
        "error: "
    )
