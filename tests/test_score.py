"""``harness score`` end to end through the CLI."""

import json

import polars as pl
import pytest


@pytest.fixture
def files(tmp_path):
    recs = tmp_path / "recs.parquet"
    pl.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 11, 10], "score": [2.0, 1.0, 1.0]}).write_parquet(recs)
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,11\n2,12\n")
    return recs, truth


def test_json(cli, files):
    recs, truth = files
    out = json.loads(cli("score", "--recs", str(recs), "--truth", str(truth), "--k", "2", "--json").stdout)
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
    assert r.stderr.startswith("error: ") and str(bad) in r.stderr and len(r.stderr.splitlines()) == 1
