"""Shared fixtures: a private home for every test, a CLI runner, and fake plugins registered
through the real door (an installed distribution's entry points)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.config import ENV_DATASETS, ENV_HOME


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own HARNESS_HOME and no user registry."""
    path = tmp_path_factory.mktemp("home")
    monkeypatch.setenv(ENV_HOME, str(path))
    monkeypatch.delenv(ENV_DATASETS, raising=False)
    # one BLAS thread: tests run in parallel on a small machine
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return path


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
