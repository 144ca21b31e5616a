"""Submit pipeline: fake plugins that misbehave end as stored failed runs; a good run stores
metrics, per-user metrics and its lists; the database is never left with half a run."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
import types
from datetime import datetime
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
SLEEPY = """
import time, polars as pl
class Model:
    def fit(self, data):
        time.sleep(6)
        self.item = data.interactions["item_id"][0]
    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users, "item_id": [self.item] * len(users),
                             "score": [1.0] * len(users)})
"""


def _real(module: str, attr: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


@pytest.fixture
def dataset(home, monkeypatch) -> str:
    """A prepared small dataset: the real synthetic-small when the datasets part exists, else a
    stand-in split served by patched store.splits functions (in-process callers only)."""
    _install_metrics_standin(monkeypatch)
    if _real("harness.datasets", "prepare") and _real("harness.store.splits", "load_split"):
        from harness.datasets import prepare

        prepare("synthetic-small", home=home)
        return "synthetic-small"
    _install_split_standin(monkeypatch)
    return "tiny"


def _install_split_standin(monkeypatch) -> None:
    import harness.store.splits as splits

    users = list(range(1, 41))
    train = pl.DataFrame({
        "user_id": [u for u in users for _ in range(3)],
        "item_id": [(u * j) % 17 + 1 for u in users for j in (1, 2, 3)],
        "timestamp": [datetime(2020, 1, 1)] * 120,
        "weight": pl.Series([1.0] * 120, dtype=pl.Float32),
    }).unique(["user_id", "item_id"], maintain_order=True)
    truth = pl.DataFrame({"user_id": users[::2] + [99], "item_id": [1] * 20 + [2]})
    test_users = pl.DataFrame({"user_id": users[::2] + [99], "cold": [False] * 20 + [True]})

    def load_split(home, dataset, split=None, parts=("train", "truth", "test_users", "users", "items")):
        if dataset != "tiny":
            raise NotFoundError(f"dataset {dataset!r} is not prepared")
        return types.SimpleNamespace(
            dataset="tiny", split="temporal", fingerprint="f" * 16, cutoff=datetime(2020, 2, 1),
            protocol={}, info={}, users=None, items=None,
            train=train if "train" in parts else None, truth=truth if "truth" in parts else None,
            test_users=test_users if "test_users" in parts else None)

    def split_meta(home, dataset, split=None):
        return {"dataset": "tiny", "split": "temporal", "fingerprint": "f" * 16}

    monkeypatch.setattr(splits, "load_split", load_split, raising=False)
    monkeypatch.setattr(splits, "split_meta", split_meta, raising=False)


def _install_metrics_standin(monkeypatch) -> None:
    """hit_rate@k only, and the validation rules the brief fixes."""
    if _real("harness.recs", "validate_recommendations") and _real("harness.metrics", "evaluate"):
        return
    from harness.errors import ValidationError

    def validate_recommendations(recs, *, source, k=None, users=None):
        dup = recs.filter(pl.struct("user_id", "item_id").is_duplicated())
        if dup.height:
            raise ValidationError(f"{source}: duplicate (user_id, item_id) {dup.row(0)}")
        if users is not None:
            extra = recs.filter(~pl.col("user_id").is_in(users.implode()))
            if extra.height:
                raise ValidationError(f"{source}: user not asked for {extra.row(0)}")
        counts = recs.group_by("user_id").len()
        if k is not None and counts["len"].max() > k:
            raise ValidationError(f"{source}: more than k={k} items")
        out = recs.with_columns(rank=pl.int_range(1, pl.len() + 1).over("user_id").cast(pl.Int32))
        return out, {"users_with_lists": counts.height,
                     "users_missing": 0 if users is None else users.len() - counts.height,
                     "short_lists": int((counts["len"] < (k or 0)).sum())}

    def evaluate(recs, truth, *, ks=(10,), train=None, cold_users=None, item_categories=None):
        hits = truth.join(recs, on=["user_id", "item_id"], how="left")
        per = hits.group_by("user_id").agg((pl.col("rank") <= 10).any().cast(pl.Float64).alias("hit_rate@10"))
        per = per.with_columns(segment=pl.when(pl.col("user_id").is_in(cold_users.implode()))
                               .then(pl.lit("cold")).otherwise(pl.lit("warm")))
        value = per["hit_rate@10"].fill_null(0).mean()
        metrics = {"all": {"hit_rate@10": value, "ndcg@10": value}, "warm": {"hit_rate@10": value, "ndcg@10": value}}
        return types.SimpleNamespace(metrics=metrics, per_user=per, notices=[])

    monkeypatch.setitem(sys.modules, "harness.recs", types.SimpleNamespace(validate_recommendations=validate_recommendations, read_table=pl.read_parquet))
    monkeypatch.setitem(sys.modules, "harness.metrics", types.SimpleNamespace(evaluate=evaluate, DEFAULT_KS=(1, 5, 10, 20, 50, 100)))


def _counts(home: Path) -> dict[str, int]:
    with duckdb.connect(str(home / "harness.duckdb"), read_only=True) as con:
        return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("runs", "run_metrics", "run_user_metrics")}


def _only_run(home: Path) -> dict:
    runs = store.list_runs(home)
    assert len(runs) == 1
    return store.get_run(home, runs[0]["run_id"])


def test_good_run_is_stored_with_metrics_lists_and_environment(home, dataset, register_plugins):
    from harness.runner import submit

    register_plugins({"good": GOOD})
    stages = []
    run = submit(home, "good", dataset=dataset, params={"n": "2"}, k=5,
                 progress=lambda s, state, d: stages.append((s, state)))
    assert run["status"] == "ok" and run["parameters"] == {"n": "2"} and run["k"] == 5
    assert run["plugin_distribution"] == "fakeplugins" and run["baseline"] is False
    assert run["fit_seconds"] >= 0 and run["peak_memory_bytes"] > 10 << 20
    assert set(run["segments"]) >= {"all"} and run["metrics"] == run["segments"]["all"]
    assert [s for s, state in stages if state == "done"] == [
        "load", "handoff", "spawn", "fit", "recommend", "validate", "score", "store"]
    lists = pl.read_parquet(home / run["recs_path"])
    assert lists.group_by("user_id").len()["len"].max() == 2  # n=2 reached the model
    counts = _counts(home)
    assert counts["runs"] == 1 and counts["run_metrics"] > 0 and counts["run_user_metrics"] > 0
    per_user = store.user_metrics(home, run["run_id"])
    assert per_user.height == counts["run_user_metrics"] and "hit_rate@5" in per_user.columns


@pytest.mark.parametrize(("source", "limits", "message"), [
    (RAISES, {}, "boom in fit"),
    (HANGS, {"timeout": 1.5}, "timeout"),
    (DUPLICATES, {}, "listed twice"),
    (GREEDY, {"memory": 1 << 30}, "out of memory"),
])
def test_misbehaving_plugin_ends_as_failed_run(home, dataset, register_plugins, source, limits, message):
    from harness.runner import submit

    register_plugins({"bad": source})
    start = time.monotonic()
    with pytest.raises(RunError, match=message):
        submit(home, "bad", dataset=dataset, k=5, **limits)
    assert time.monotonic() - start < 30
    run = _only_run(home)
    assert run["status"] == "failed" and message in run["error"].lower()
    assert run["metrics"] == {} and run["ended_at"] is not None
    counts = _counts(home)
    assert counts["run_metrics"] == 0 and counts["run_user_metrics"] == 0
    assert not list((home / "runs").glob("*.parquet")) if (home / "runs").exists() else True
    if source is RAISES:
        assert "RuntimeError: boom in fit" in run["stderr_tail"]


def test_fewer_items_than_k_is_reported_not_fatal(home, dataset, register_plugins):
    from harness.runner import submit

    register_plugins({"short": GOOD})
    run = submit(home, "short", dataset=dataset, params={"n": "2"}, k=10)
    assert run["status"] == "ok"
    assert run["report"]["validation"]["short_lists"] > 0


def test_interrupt_marks_run_aborted(home, dataset, register_plugins, monkeypatch):
    import harness.runner as runner

    register_plugins({"good": GOOD})

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.submit(home, "good", dataset=dataset, k=5)
    run = _only_run(home)
    assert run["status"] == "aborted" and "interrupted" in run["error"]
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
    import harness.runner as runner

    monkeypatch.setattr(runner.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    env = runner._worker_env()
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"


@pytest.mark.parametrize(("text", "size"), [("2G", 2 << 30), ("512M", 512 << 20), ("1.5g", 3 << 29), ("1000", 1000)])
def test_parse_size(text, size):
    from harness.runner import parse_size

    assert parse_size(text) == size


def _read_runs_in_subprocess(home: Path) -> subprocess.CompletedProcess:
    code = ("import sys, json; from pathlib import Path; from harness.store.runs import list_runs; "
            "print(json.dumps([r['status'] for r in list_runs(Path(sys.argv[1]))]))")
    return subprocess.run([sys.executable, "-c", code, str(home)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_database_is_readable_from_another_process_while_a_model_trains(home, dataset, register_plugins):
    """No connection is held during fit: another process reads the runs meanwhile, at once."""
    import threading

    from harness.runner import submit

    register_plugins({"sleepy": SLEEPY})
    stages: list[str] = []
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run=submit(
        home, "sleepy", dataset=dataset, k=5, progress=lambda s, state, d: stages.append(f"{s}:{state}"))))
    thread.start()
    deadline = time.monotonic() + 30
    while "fit:start" not in stages and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.monotonic()
    reader = _read_runs_in_subprocess(home)
    assert reader.returncode == 0, reader.stderr
    assert json.loads(reader.stdout) == ["running"]
    if dataset != "tiny":  # the real split store is there: the CLI leaderboard reads it too
        board = subprocess.run(
            [sys.executable, "-c", "from harness.cli import main; main()", "leaderboard",
             "--dataset", dataset, "--json"], capture_output=True, text=True, timeout=60)
        assert board.returncode == 0, board.stderr
        assert json.loads(board.stdout)["rows"] == []  # the running run is not on the board
    assert "fit:done" not in stages  # the reads happened during fit
    assert time.monotonic() - start < 6
    thread.join(timeout=60)
    assert result["run"]["status"] == "ok"
