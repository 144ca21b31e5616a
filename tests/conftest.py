"""Shared fixtures: a private home for every test, a CLI runner, and fake plugins registered
through the real door (an installed distribution's entry points)."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from harness.config import ENV_DATASETS, ENV_HOME, db_path
from harness.store import runs

# Bytecode caches on for this run and the processes it starts (an environment may set
# PYTHONDONTWRITEBYTECODE): the suite starts some eighty Python processes (workers, command lines,
# a notebook kernel) that would each compile the harness modules they import from source (about
# 0.1 CPU-s each), and each pytest worker would rewrite every test module again.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own HARNESS_HOME and no user registry."""
    path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(ENV_HOME, str(path))
    monkeypatch.delenv(ENV_DATASETS, raising=False)
    # one BLAS thread: tests run in parallel on a small machine
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return path


@pytest.fixture(scope="session")
def _prepared_home(tmp_path_factory) -> Path:
    """A home with synthetic-small prepared, once per test process (every split lives in the db)."""
    from harness.datasets import prepare

    path = tmp_path_factory.mktemp("prepared")
    prepare("synthetic-small", home=path)
    return path


def _clone(template: Path, home: Path) -> None:
    """Give ``home`` a copy of ``template``'s database and stored lists: a home built once per
    test process serves every test that starts from it."""
    shutil.copyfile(db_path(template), db_path(home))
    if (template / "runs").is_dir():
        shutil.copytree(template / "runs", home / "runs", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def clone_home():
    """``clone_home(template, home)``: for test modules that build their own template homes."""
    return _clone


@pytest.fixture
def dataset(home, _prepared_home) -> str:
    """synthetic-small's default split in the test's home (a copy of the session's database)."""
    _clone(_prepared_home, home)
    return "synthetic-small"


@pytest.fixture(scope="session")
def _embedded_home(tmp_path_factory) -> Path:
    """A home with the embedded ml-latest-small prepared, once per test process."""
    from harness.datasets import prepare

    path = tmp_path_factory.mktemp("embedded")
    prepare("ml-latest-small", home=path)
    return path


@pytest.fixture
def embedded(home, _embedded_home) -> str:
    """ml-latest-small's default split in the test's home (a copy of the session's database)."""
    _clone(_embedded_home, home)
    return "ml-latest-small"


def _fake_run(home, run_id, name, value, *, fingerprint, dataset_name, split, baseline=False):
    """A stored ok run with hand-set metrics (no model trained)."""
    runs.create_run(
        home,
        runs.Run(
            run_id=run_id,
            recommender=name,
            parameters={"a": "1"},
            k=10,
            dataset=dataset_name,
            split=split,
            fingerprint=fingerprint,
            baseline=baseline,
            started_at=datetime(2026, 1, 1),
        ),
    )
    runs.finish_run(
        home,
        run_id,
        metrics={
            "all": {"ndcg@10": value, "recall@10": value / 2},
            "warm": {"ndcg@10": value + 0.1},
        },
        per_user=pl.DataFrame(
            {"user_id": [1, 2], "segment": ["warm", "warm"], "ndcg@10": [value, value]}
        ),
        fields={"fit_seconds": 1.0, "recommend_seconds": 0.5},
    )


@pytest.fixture(scope="session")
def _board_home(tmp_path_factory, _prepared_home) -> Path:
    """The prepared split and five hand-made runs, built once per test process."""
    from harness.store.splits import split_meta

    home = tmp_path_factory.mktemp("board")
    _clone(_prepared_home, home)
    meta = split_meta(home, "synthetic-small")
    fp, split, dataset = meta["fingerprint"], meta["split"], "synthetic-small"
    for run_id, name, value, baseline in (
        ("r-pop", "popular", 0.10, True),
        ("r-rand", "random", 0.01, True),
        ("r-mine", "mine", 0.25, False),
    ):
        _fake_run(
            home,
            run_id,
            name,
            value,
            fingerprint=fp,
            dataset_name=dataset,
            split=split,
            baseline=baseline,
        )
    _fake_run(home, "r-old", "stale", 0.99, fingerprint="other", dataset_name=dataset, split=split)
    runs.create_run(
        home,
        runs.Run(
            run_id="r-fail",
            recommender="broken",
            dataset=dataset,
            split=split,
            fingerprint=fp,
            started_at=datetime(2026, 1, 2),
        ),
    )
    runs.mark_run(home, "r-fail", "failed", error="recommender raised boom")
    return home


@pytest.fixture
def board(home, _board_home) -> str:
    """Five hand-made runs on the prepared split: three ranked, one stale fingerprint, one failed
    (a copy of a home built once per test process)."""
    _clone(_board_home, home)
    return "synthetic-small"


@pytest.fixture
def cli():
    """Run ``harness ARGS...`` in-process; exceptions that are bugs propagate with tracebacks."""
    from harness.cli import main

    def invoke(*args: str, input: str | None = None, expect: int | None = 0):
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}, expected {expect}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result

    return invoke


@pytest.fixture
def no_worker(monkeypatch):
    """Submissions that must end before any worker starts: starting one fails the test."""
    from harness.runner import pipeline

    def refuse(*args, **kwargs):
        raise AssertionError("a worker was started")

    monkeypatch.setattr(pipeline, "run_worker", refuse)


@pytest.fixture
def register_plugins(tmp_path, monkeypatch):
    """Install fake recommenders as a real distribution on sys.path (and PYTHONPATH, so worker
    processes see them too).

    Usage: ``register_plugins({"name": "source code defining class Model"})``; each entry point
    ``name`` points at ``Model`` in its own module.
    """

    def install(plugins: dict[str, str], dist: str = "fakeplugins", version: str = "0.0.1"):
        root = tmp_path / f"site-{dist}"
        pkg = root / f"{dist}_mods"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text("")
        lines = ["[harness.recommenders]"]
        for name, source in plugins.items():
            module = name.replace("-", "_")
            (pkg / f"{module}.py").write_text(textwrap.dedent(source))
            lines.append(f"{name} = {dist}_mods.{module}:Model")
        info = root / f"{dist}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(root))
        existing = os.environ.get("PYTHONPATH")
        monkeypatch.setenv("PYTHONPATH", str(root) + (os.pathsep + existing if existing else ""))
        for mod in [m for m in sys.modules if m.startswith(f"{dist}_mods")]:
            del sys.modules[mod]
        return root

    return install
