"""submit end to end with the real parts: the embedded dataset, real baselines, real metrics,
the CLI in subprocesses (two at once), the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "from harness.cli import main; main()"]


def _harness(home, *args, **kwargs):
    env = {**os.environ, "HARNESS_HOME": str(home)}
    return subprocess.Popen(
        [*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs
    )


def test_two_cli_submissions_in_parallel_processes(home, dataset):
    procs = [
        _harness(home, "submit", name, "--dataset", dataset, "--k", "20", "--json")
        for name in ("popular", "random")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    runs = [json.loads(out) for out, _ in outs]
    assert {r["recommender"] for r in runs} == {"popular", "random"}
    assert all(r["status"] == "ok" and r["metrics"]["ndcg@10"] is not None for r in runs)
    board = _harness(home, "leaderboard", "--dataset", dataset, "--json")
    out, err = board.communicate(timeout=60)
    rows = json.loads(out)["rows"]
    assert [r["recommender"] for r in rows] == ["popular", "random"]  # popular beats random
    assert all(r["baseline"] for r in rows)


@pytest.mark.slow
def test_demo_on_the_embedded_dataset_separates_popular_from_random(cli):
    """The demo's loop (prepare, submit each chosen baseline, print the board) on the embedded
    dataset, and what its runs show: popular and random in separate rank bands, and a paired
    comparison whose interval excludes 0. (Every baseline's quality on this split, ease's
    included, is tested in test_baselines_quality.py, without the demo around it.)"""
    out = cli("demo", "--only", "random,popular").stdout
    assert "ml-latest-small" in out and "popular" in out and "random" in out
    board = json.loads(cli("leaderboard", "--dataset", "ml-latest-small", "--json").stdout)
    assert [(r["recommender"], r["rank_band"]) for r in board["rows"]] == [
        ("popular", [1, 1]),
        ("random", [2, 2]),
    ]
    best = board["rows"][0]
    assert best["vs_best_baseline"] == 0.0 and best["metrics"]["ndcg@10"] > 0
    ids = {r["recommender"]: r["run_id"] for r in board["rows"]}
    res = json.loads(cli("compare", ids["popular"], ids["random"], "--json").stdout)
    assert res["metrics"]["ndcg@10"]["ci"][0] > 0 and res["users"] == 608
