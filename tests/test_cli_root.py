"""The root command: global options and the single place that turns input errors into exits."""

from __future__ import annotations

import json

import click
import pytest

from harness.cli import HarnessGroup
from harness.errors import DataError


def test_version_and_help(cli):
    assert "harness" in cli("--version").stdout
    out = cli("--help").stdout
    for command in (
        "data",
        "list",
        "submit",
        "score",
        "leaderboard",
        "runs",
        "show",
        "demo",
        "new",
    ):
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


def test_home_option_is_used(cli, home, tmp_path):
    other = tmp_path / "h"
    assert json.loads(cli("--home", str(other), "runs", "--json").stdout) == []
    assert (other / "harness.duckdb").is_file()  # --home wins over $HARNESS_HOME
    assert not (home / "harness.duckdb").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["submit", "popular", "--dataset", "x", "--k", "0"], ["--k", "0"]),
        (["submit", "popular", "--dataset", "x", "--k", "-5"], ["--k", "-5"]),
        (["submit", "popular"], ["--dataset"]),
        (["score", "--recs", "r.csv", "--k", "0"], ["--k"]),
        (["leaderboard"], ["--dataset"]),
        (["runs", "--limit", "x"], ["--limit"]),
        (["no-such-command"], ["no-such-command"]),
    ],
)
def test_usage_errors_are_one_error_line_and_exit_two(cli, args, words):
    """Not Click's three-line usage block: one `error:` line naming the option, and the command's
    --help as the next step."""
    result = cli(*args, expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert "--help" in lines[0]


def test_help_and_version_still_exit_zero(cli):
    assert cli().stdout.startswith("Usage")  # no command: the help, not an error
    assert "Usage" in cli("submit", "--help").stdout
    assert cli("--version").exit_code == 0


def test_control_characters_in_messages_are_escaped():
    from click.testing import CliRunner

    @click.group(cls=HarnessGroup)
    def root():
        pass

    @root.command()
    def bad():
        raise DataError("file\x1b[31m.csv: bad\nrow")

    result = CliRunner().invoke(root, ["bad"], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr == "error: file\\x1b[31m.csv: bad\\nrow\n"


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "popular", "--dataset", "x", "--k", "3000000000"],
        ["score", "--recs", "r.csv", "--truth", "t.csv", "--k", "10001"],
    ],
)
def test_k_above_the_documented_maximum_is_a_usage_error(cli, args):
    result = cli(*args, expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--k" in lines[0] and "10000" in lines[0], result.stderr
