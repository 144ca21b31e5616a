"""The root command: global options and the single place that turns input errors into exits."""

from __future__ import annotations

import click

from harness.cli import HarnessGroup
from harness.errors import DataError


def test_version_and_help(cli):
    assert "harness" in cli("--version").stdout
    out = cli("--help").stdout
    for command in ("data", "list", "submit", "score", "leaderboard", "runs", "show", "demo", "new"):
        assert command in out, command


def test_input_errors_become_one_line_and_exit_one():
    from click.testing import CliRunner

    @click.group(cls=HarnessGroup)
    def root():
        pass

    @root.command()
    def bad():
        raise DataError("ratings.csv: row 3: user_id is null")

    result = CliRunner().invoke(root, ["bad"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == "error: ratings.csv: row 3: user_id is null\n"


def test_home_option_is_used(cli, tmp_path):
    from harness.cli import Context

    ctx = Context(str(tmp_path / "h"), None)
    assert ctx.home == (tmp_path / "h").resolve() and ctx.home.is_dir()
