"""Rough edges a new user hits (issue 11): unknown names, what prepare and export say, how data
info reads."""

from __future__ import annotations

import json

import pytest


def _one_error(result, *words):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["data", "prepare", "ml-latest-smal"],
        ["data", "info", "ml-latest-smal"],
        ["leaderboard", "--dataset", "ml-latest-smal"],
        ["submit", "popular", "--dataset", "ml-latest-smal"],
        ["runs", "--dataset", "ml-latest-smal"],
    ],
)
def test_misspelled_dataset_suggests_the_closest_names(cli, args):
    line = _one_error(cli(*args, expect=1), "unknown dataset 'ml-latest-smal'", "'ml-latest-small'")
    assert "data prepare ml-latest-smal" not in line  # a command that would fail again


def test_runs_of_an_unknown_dataset_is_an_error_not_an_empty_table(cli):
    _one_error(cli("runs", "--dataset", "nope", expect=1), "unknown dataset 'nope'")


def test_known_but_unprepared_dataset_says_how_to_prepare(cli):
    _one_error(
        cli("leaderboard", "--dataset", "ml-100k", expect=1),
        "not prepared",
        "harness data prepare ml-100k",
    )


def test_prepare_again_says_unchanged(cli):
    first = cli("data", "prepare", "synthetic-small").stdout
    assert first.startswith("prepared synthetic-small")
    again = cli("data", "prepare", "synthetic-small").stdout
    assert again.startswith("unchanged: synthetic-small split temporal") and "--force" in again
    assert (
        json.loads(cli("data", "prepare", "synthetic-small", "--json").stdout)["unchanged"] is True
    )
    assert cli("data", "prepare", "synthetic-small", "--force").stdout.startswith("prepared")


def test_export_of_a_part_the_dataset_lacks_says_why(cli, tmp_path, embedded):
    line = _one_error(
        cli(
            "data",
            "export",
            "ml-latest-small",
            "--part",
            "users",
            "--out",
            str(tmp_path / "u.csv"),
            expect=1,
        ),
        "no user features",
        "train, test, truth, items",
    )
    assert not (tmp_path / "u.csv").exists() and "table" not in line


def test_data_info_reads_as_text_not_python_dicts(cli):
    cli("data", "prepare", "synthetic-small")
    text = cli("data", "info", "synthetic-small").stdout
    assert "{" not in text and "'" not in text and "True" not in text
    assert "temporal, last 7 days" in text and "cold users" in text
    assert "raw interactions" in text


def test_runs_limit_must_be_positive(cli):
    _one_error(cli("runs", "--limit", "-1", expect=2), "--limit", "-1")


def test_hint_after_submit_keeps_split_and_registry(cli, tmp_path):
    """Following the printed command shows the board the run is on (same split, same registry)."""
    reg = tmp_path / "reg.toml"
    reg.write_text(
        '[tiny]\nformat = "synthetic"\n'
        "params = { n_users = 200, n_items = 50, n_interactions = 3000, days = 30, seed = 1 }\n"
        '[tiny.splits.temporal]\nprotocol = "temporal"\ndays = 7\n'
        '[tiny.splits.last]\nprotocol = "leave-last"\n'
    )
    cli("--datasets", str(reg), "data", "prepare", "tiny", "--split", "last")
    out = cli(
        "--datasets",
        str(reg),
        "submit",
        "popular",
        "--dataset",
        "tiny",
        "--split",
        "last",
        "--k",
        "5",
    ).stdout
    flat = " ".join(out.split())
    hint = f"harness --datasets {reg} leaderboard --dataset tiny --split last"
    assert hint in flat, flat
