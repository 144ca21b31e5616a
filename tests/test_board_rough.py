"""The board as a new user reads it (issue 11): lower-is-better metrics rank ascending, a run
without the board's k is noted instead of ranked blank, one row per model on request, runs can be
removed, and an 80-column terminal still shows a short run id and the params."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from harness.store import runs as store


def _run(home, meta, run_id, name, metrics, *, params=None, k=100, baseline=False, day=1):
    store.create_run(
        home,
        store.Run(
            run_id=run_id,
            recommender=name,
            parameters=params or {},
            k=k,
            dataset=meta["dataset"],
            split=meta["split"],
            fingerprint=meta["fingerprint"],
            baseline=baseline,
            started_at=datetime(2026, 1, day),
        ),
    )
    store.finish_run(
        home,
        run_id,
        metrics={"all": metrics},
        per_user=pl.DataFrame(
            {"user_id": [1], "segment": ["warm"], **{m: [v] for m, v in metrics.items()}}
        ),
        fields={"fit_seconds": 1.0, "recommend_seconds": 0.5},
    )


@pytest.fixture(scope="session")
def _rough_home(tmp_path_factory, _prepared_home, clone_home):
    """Four als/popular/short runs on the prepared split, built once per test process."""
    from harness.store.splits import split_meta

    home = tmp_path_factory.mktemp("rough")
    clone_home(_prepared_home, home)
    meta = split_meta(home, "synthetic-small")
    _run(
        home,
        meta,
        "20260101-000000-aaaaaa",
        "als",
        {"ndcg@10": 0.30, "ndcg@100": 0.40, "gini@10": 0.9},
        params={"factors": "64", "iterations": "15", "regularization": "0.01"},
        day=1,
    )
    _run(
        home,
        meta,
        "20260102-000000-bbbbbb",
        "als",
        {"ndcg@10": 0.20, "ndcg@100": 0.35, "gini@10": 0.5},
        params={"factors": "128", "iterations": "15", "regularization": "0.01"},
        day=2,
    )
    _run(
        home,
        meta,
        "20260103-000000-cccccc",
        "popular",
        {"ndcg@10": 0.10, "ndcg@100": 0.20, "gini@10": 0.99},
        baseline=True,
        day=3,
    )
    _run(
        home,
        meta,
        "20260104-000000-dddddd",
        "short",
        {"ndcg@10": 0.50, "gini@10": 0.1},
        k=50,
        day=4,
    )
    return home


@pytest.fixture
def board(home, _rough_home, clone_home):
    clone_home(_rough_home, home)
    return "synthetic-small"


def _rows(cli, *args):
    return json.loads(cli("leaderboard", "--dataset", "synthetic-small", "--json", *args).stdout)


def test_gini_ranks_ascending(cli, board):
    out = _rows(cli, "--metric", "gini@10")
    assert [r["metrics"]["gini@10"] for r in out["rows"]] == [0.1, 0.5, 0.9, 0.99]
    assert out["rows"][0]["rank"] == 1
    # the best baseline of a lower-is-better metric is the lowest, and "better" is negative
    assert out["best_baseline"] == 0.99
    assert out["rows"][0]["vs_best_baseline"] == pytest.approx(0.1 - 0.99)


def test_run_without_the_boards_k_is_noted_not_ranked_blank(cli, board):
    out = _rows(cli, "--metric", "ndcg@100")
    ranked = [r for r in out["rows"] if r["rank"] is not None]
    assert [r["recommender"] for r in ranked] == ["als", "als", "popular"]
    unranked = [r for r in out["rows"] if r["rank"] is None]
    assert [r["run_id"] for r in unranked] == ["20260104-000000-dddddd"]
    assert any("k=50" in n and "ndcg@100" in n for n in out["notices"])
    shown = cli("leaderboard", "--dataset", board, "--metric", "ndcg@100")
    assert "k=50" in shown.stderr and "unranked" in shown.stderr
    assert "│    - │" in shown.stdout or "- │" in shown.stdout


def test_best_per_model_keeps_each_models_best_run(cli, board):
    out = _rows(cli, "--best-per-model")
    assert [(r["recommender"], r["run_id"][-6:]) for r in out["rows"]] == [
        ("short", "dddddd"),
        ("als", "aaaaaa"),
        ("popular", "cccccc"),
    ]
    assert [r["rank"] for r in out["rows"]] == [1, 2, 3]


def test_rm_removes_a_run_and_its_lists(cli, board, home):
    result = cli("rm", "bbbbbb")
    assert "20260102-000000-bbbbbb" in result.stdout
    assert [r["run_id"][-6:] for r in _rows(cli)["rows"]] == ["dddddd", "aaaaaa", "cccccc"]
    line = cli("show", "20260102-000000-bbbbbb", expect=1).stderr
    assert line.startswith("error: ") and "not found" in line
    assert cli("rm", "nope", expect=1).stderr.startswith("error: ")


def test_show_accepts_the_short_id_of_the_board(cli, board):
    assert "20260101-000000-aaaaaa" in cli("show", "aaaaaa").stdout


@pytest.mark.parametrize("width", [80, 160])
def test_narrow_terminal_keeps_short_run_id_and_params(cli, board, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    text = cli("leaderboard", "--dataset", board).stdout
    assert max(len(line) for line in text.splitlines()) <= width
    for short in ("aaaaaa", "bbbbbb", "cccccc"):
        assert short in text
    # the two als rows differ by their params, which must show (truncated, not dropped)
    als = [line for line in text.splitlines() if "als" in line]
    assert len(als) == 2 and als[0] != als[1]
    assert "factors=64" in als[0] or "factors=64" in als[1] or "fac" in als[0]


def test_columns_option_chooses_columns(cli, board, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = cli("leaderboard", "--dataset", board, "--columns", "rank,run,ndcg@10").stdout
    header = next(line for line in text.splitlines() if "rank" in line)
    assert "run" in header and "ndcg@10" in header and "recommender" not in header
    bad = cli("leaderboard", "--dataset", board, "--columns", "rank,colour", expect=1).stderr
    assert bad.startswith("error: ") and "colour" in bad


def test_chosen_columns_at_80_shorten_text_cells_never_the_run_id(cli, board, home, monkeypatch):
    from harness.store import runs as store

    monkeypatch.setenv("COLUMNS", "80")
    store.retag(
        home, "aaaaaa", ["a-rather-long-tag", "another-tag"], [], note="n" * 120, set_note=True
    )
    chosen = "rank,band,run,recommender,params,tags,ndcg@10,note,date"
    text = cli("leaderboard", "--dataset", board, "--columns", chosen).stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for short in ("aaaaaa", "bbbbbb", "cccccc"):
        assert short in text  # whole, not "aaa…"
    assert "left out for width: date" in " ".join(text.split())  # said, not squeezed


def test_show_sorts_metrics_numerically_by_k(cli, board):
    run = json.loads(cli("show", "aaaaaa", "--json").stdout)
    assert list(run["metrics"]) == ["ndcg@10", "ndcg@100", "gini@10"]


def test_score_dataset_prints_run_id_and_position(cli, home, tmp_path):
    from harness.store.splits import load_split

    cli("data", "prepare", "synthetic-small")
    truth = load_split(home, "synthetic-small", parts=("truth",)).truth
    recs = tmp_path / "mine.parquet"
    truth.with_columns(pl.lit(1.0).alias("score")).write_parquet(recs)
    out = cli(
        "score",
        "--recs",
        str(recs),
        "--dataset",
        "synthetic-small",
        "--name",
        "oracle",
        "--k",
        "10",
    ).stdout
    run_id = store.list_runs(home)[0].run_id
    assert f"run {run_id}" in out and "position: 1 of 1" in out


def test_runs_and_list_at_80_columns_do_not_split_ids_or_values(cli, board, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("runs").stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    for run_id in ("20260101-000000-aaaaaa", "20260104-000000-dddddd"):
        assert run_id in text  # whole, on one line
    listing = cli("list").stdout
    assert max(len(line) for line in listing.splitlines()) <= 80
    assert "regularization=0.01" in listing and "factors=64" in listing
