"""Submit pipeline: fake plugins that misbehave end as stored failed runs; a good run stores
metrics, per-user metrics and its lists; the database is never left with half a run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from harness.errors import NotFoundError, RunError
from harness.store import runs as store

GOOD = """
import polars as pl
class Model:
    def __init__(self, n: int = 3):
        self.n = n
    def fit(self, data):
        self.top = (data.interactions.group_by("item_id").len()
                    .sort(["len", "item_id"], descending=[True, False])["item_id"].head(self.n))
    def recommend(self, users, k):
        top = self.top.head(k)
        return (pl.DataFrame({"user_id": users}).join(pl.DataFrame({"item_id": top}), how="cross")
                .with_columns(score=-pl.int_range(pl.len()).over("user_id").cast(pl.Float64)))
"""
RAISES = """
class Model:
    def fit(self, data):
        raise RuntimeError("boom in fit")
    def recommend(self, users, k):
        pass
"""
HANGS = """
import time
class Model:
    def fit(self, data):
        time.sleep(60)
    def recommend(self, users, k):
        pass
"""
DUPLICATES = """
import polars as pl
class Model:
    def fit(self, data):
        self.item = data.interactions["item_id"][0]
    def recommend(self, users, k):
        return pl.DataFrame({"user_id": pl.concat([users, users]),
                             "item_id": [self.item] * (2 * len(users)),
                             "score": [1.0] * (2 * len(users))})
"""
GREEDY = """
class Model:
    def fit(self, data):
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))
    def recommend(self, users, k):
        pass
"""
WAITS = """
import pathlib, time, polars as pl
GO = pathlib.Path(__file__).with_name("go")  # the test creates it once it has read the store
class Model:
    def fit(self, data):
        deadline = time.monotonic() + 120
        while not GO.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.item = data.interactions["item_id"][0]
    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users, "item_id": [self.item] * len(users),
                             "score": [1.0] * len(users)})
"""


def _counts(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "harness.duckdb"), read_only=True) as con:
        return {
            t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("runs", "run_metrics", "run_user_metrics")
        }


def _only_run(home: Path) -> store.Run:
    runs = store.list_runs(home)
    assert len(runs) == 1
    return store.get_run(home, runs[0].run_id)


def test_good_run_is_stored_with_metrics_lists_and_environment(home, dataset, register_plugins):
    from harness.runner import submit

    register_plugins({"good": GOOD})
    stages = []
    run = submit(
        home,
        "good",
        dataset=dataset,
        params={"n": "2"},
        k=5,
        progress=lambda s, state, d: stages.append((s, state)),
    )
    assert run.status == "ok" and run.parameters == {"n": "2"} and run.k == 5
    assert run.plugin_distribution == "fakeplugins" and run.baseline is False
    assert run.fit_seconds >= 0 and run.peak_memory_bytes > 10 << 20
    assert set(run.segments) >= {"all"} and run.metrics == run.segments["all"]
    assert [s for s, state in stages if state == "done"] == [
        "load",
        "handoff",
        "spawn",
        "fit",
        "recommend",
        "score",
        "store",
    ]
    lists = pl.read_parquet(home / run.recs_path)
    assert lists.group_by("user_id").len()["len"].max() == 2  # n=2 reached the model
    counts = _counts(home)
    assert counts["runs"] == 1 and counts["run_metrics"] > 0
    # per-user values: a parquet file per run beside its lists, not rows of the database
    assert counts["run_user_metrics"] == 0 and run.user_values_path
    stored = pl.read_parquet(home / run.user_values_path)
    per_user = store.user_metrics(home, run.run_id)
    assert per_user.height == stored.height > 0 and "hit_rate@5" in per_user.columns
    assert per_user["user_id"].is_sorted() and per_user.columns == stored.columns
    # the model lists the two most popular train items to everyone: hit rate by hand
    from harness.store.splits import load_split

    split = load_split(home, dataset, parts=("train", "truth", "test_users"))
    top = (
        split.train.group_by("item_id")
        .len()
        .sort(["len", "item_id"], descending=[True, False])["item_id"]
        .head(2)
    )
    hits = split.truth.filter(pl.col("item_id").is_in(top.implode()))["user_id"].n_unique()
    assert run.metrics["hit_rate@5"] == pytest.approx(hits / split.test_users.height)
    assert per_user["hit_rate@5"].sum() == hits


@pytest.mark.parametrize(
    ("source", "limits", "message"),
    [
        (RAISES, {}, "boom in fit"),
        (HANGS, {"timeout": 1.5}, "timeout"),
        (DUPLICATES, {}, "listed twice"),
        (GREEDY, {"memory": 1 << 30}, "out of memory"),
    ],
)
def test_misbehaving_plugin_ends_as_failed_run(
    home, dataset, register_plugins, source, limits, message
):
    from harness.runner import submit

    register_plugins({"bad": source})
    start = time.monotonic()
    with pytest.raises(RunError, match=message):
        submit(home, "bad", dataset=dataset, k=5, **limits)
    assert time.monotonic() - start < 30
    run = _only_run(home)
    assert run.status == "failed" and message in run.error.lower()
    assert run.metrics == {} and run.ended_at is not None
    counts = _counts(home)
    assert counts["run_metrics"] == 0 and counts["run_user_metrics"] == 0
    assert list((home / "runs").iterdir()) == []  # no list file, not even a temporary one
    if source is RAISES:
        assert "RuntimeError: boom in fit" in run.stderr_tail


def test_fewer_items_than_k_is_reported_not_fatal(home, dataset, register_plugins):
    from harness.runner import submit

    register_plugins({"short": GOOD})
    run = submit(home, "short", dataset=dataset, params={"n": "2"}, k=10)
    assert run.status == "ok"
    assert run.report["validation"]["short_lists"] > 0


def test_interrupt_marks_run_aborted(home, dataset, register_plugins, monkeypatch):
    import harness.runner.pipeline as pipeline

    register_plugins({"good": GOOD})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.scoring, "score_lists", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.submit(home, "good", dataset=dataset, k=5)
    run = _only_run(home)
    assert run.status == "aborted" and "interrupted" in run.error
    assert _counts(home)["run_metrics"] == 0 and not list((home / "runs").glob("*"))


def test_unknown_recommender_stores_nothing(home, dataset):
    from harness.runner import submit

    with pytest.raises(NotFoundError):
        submit(home, "no-such-model", dataset=dataset)
    assert store.list_runs(home) == []


def test_bad_parameter_is_an_input_error_before_any_run(home, dataset, register_plugins):
    from harness.errors import ConfigError
    from harness.runner import submit

    register_plugins({"good": GOOD})
    with pytest.raises(ConfigError, match="no parameter 'm'"):
        submit(home, "good", dataset=dataset, params={"m": "1"})
    with pytest.raises(ConfigError, match="n='x'"):
        submit(home, "good", dataset=dataset, params={"n": "x"})
    assert store.list_runs(home) == []


def test_worker_threads_follow_allowed_cores(monkeypatch):
    import harness.runner.process as process
    from harness.runner.sandbox import environment

    monkeypatch.setattr(process.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    env = environment(process.allowed_cores(), process.THREAD_VARS)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"


@pytest.mark.parametrize(
    ("text", "size"), [("2G", 2 << 30), ("512M", 512 << 20), ("1.5g", 3 << 29), ("1000", 1000)]
)
def test_parse_size(text, size):
    from harness.runner import parse_size

    assert parse_size(text) == size


def _read_runs_in_subprocess(home: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys, json; from pathlib import Path; from harness.store.runs import list_runs; "
        "print(json.dumps([r.status for r in list_runs(Path(sys.argv[1]))]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(home)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_database_is_readable_from_another_process_while_a_model_trains(
    home, dataset, register_plugins
):
    """No connection is held during fit: another process reads the runs meanwhile (a held lock
    would make the readers fail after their lock wait, since fit waits for them to finish)."""
    import threading

    from harness.runner import submit

    go = register_plugins({"waits": WAITS}) / "fakeplugins_mods" / "go"
    stages: list[str] = []
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(
            run=submit(
                home,
                "waits",
                dataset=dataset,
                k=5,
                progress=lambda s, state, d: stages.append(f"{s}:{state}"),
            )
        )
    )
    thread.start()
    deadline = time.monotonic() + 60
    while "fit:start" not in stages and time.monotonic() < deadline:
        time.sleep(0.05)
    reader = _read_runs_in_subprocess(home)
    assert reader.returncode == 0, reader.stderr
    assert json.loads(reader.stdout) == ["running"]
    board = subprocess.run(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "leaderboard",
            "--dataset",
            dataset,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert board.returncode == 0, board.stderr
    assert json.loads(board.stdout)["rows"] == []  # the running run is not on the board
    assert "fit:done" not in stages  # the reads happened during fit
    go.touch()
    thread.join(timeout=60)
    assert result["run"].status == "ok"


def test_submission_killed_with_sigkill_shows_aborted_and_its_worker_exits(
    home, dataset, register_plugins, cli
):
    """SIGKILL leaves no chance to clean up: the run reads as aborted, the orphaned worker leaves."""
    import os
    import signal

    import psutil

    register_plugins({"hangs": HANGS})
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "submit",
            "hangs",
            "--dataset",
            dataset,
            "--k",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        store.list_runs(home) if (home / "harness.duckdb").exists() else []
    ):
        time.sleep(0.2)  # the run is stored once the worker has built the model and starts fit
    assert [r.status for r in store.list_runs(home)] == ["running"]
    workers = psutil.Process(parent.pid).children(recursive=True)  # the sandbox and the worker
    assert any("harness.runner.worker" in " ".join(p.cmdline()) for p in workers)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=10)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the worker outlived its parent"
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["status"] for r in listed] == ["aborted"] and str(parent.pid) in listed[0]["error"]


REPORTS = """
import numpy as np, polars as pl
from harness.api import report_progress
class Model:
    def fit(self, data):
        for epoch in (1, 2):
            report_progress("fit", epoch=epoch, epochs=2, loss=np.float32(0.5 / epoch),
                            valid_ndcg=0.125, eta_seconds=3.0 * (2 - epoch))
        self.item = data.interactions["item_id"][0]
    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users, "item_id": [self.item] * len(users),
                             "score": [1.0] * len(users)})
"""


def test_model_progress_reaches_the_submitters_terminal(home, dataset, register_plugins, cli):
    """harness.api.report_progress inside the worker: relayed as 'progress' events, shown by
    submit on stderr (epochs, loss, validation score, ETA)."""
    from harness.runner import submit

    register_plugins({"reports": REPORTS})
    events = []
    submit(
        home,
        "reports",
        dataset=dataset,
        k=5,
        progress=lambda s, state, d: events.append((s, state, d)),
    )
    reports = [d for s, state, d in events if state == "progress"]
    assert [s for s, state, _ in events if state == "progress"] == ["fit", "fit"]
    assert reports[0] == {
        "epoch": 1,
        "epochs": 2,
        "loss": 0.5,
        "valid_ndcg": 0.125,
        "eta_seconds": 3.0,
    }
    result = cli("submit", "reports", "--dataset", dataset, "--k", "5")
    assert "epoch 1/2 · loss 0.5 · valid_ndcg 0.125 · eta 3 s" in result.stderr
    assert "epoch 2/2 · loss 0.25" in result.stderr


def test_format_progress_and_build_recommender():
    from harness.api import build_recommender, format_progress
    from harness.errors import ConfigError, NotFoundError

    assert (
        format_progress({"epoch": 3, "epochs": 10, "loss": 5.25, "best": None, "eta_seconds": 41.6})
        == "epoch 3/10 · loss 5.25 · eta 42 s"
    )
    model = build_recommender("als", factors=8, iterations="2")
    assert model.factors == 8 and model.iterations == 2
    with pytest.raises(NotFoundError):
        build_recommender("no-such-model")
    with pytest.raises(ConfigError, match="factorz"):
        build_recommender("als", factorz=8)
