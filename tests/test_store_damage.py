"""A damaged database or a full disk is named as such, with the file, in one error line; it is
never reported as "locked by another harness process" and never a traceback."""

from __future__ import annotations

import os

import pytest


def _one_error(result, *words):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "locked" not in lines[0]
    return lines[0]


@pytest.mark.parametrize("content", [b"", os.urandom(50_000), b"hello\n" * 1000])
def test_zero_length_or_foreign_file(cli, home, content):
    db = home / "harness.duckdb"
    db.write_bytes(content)
    _one_error(cli("runs", expect=1), str(db), "not a harness database")
    assert db.read_bytes() == content  # left as it was


def test_truncated_database(cli, home):
    cli("data", "prepare", "synthetic-small")
    db = home / "harness.duckdb"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    failed = 0
    for args in (
        ["runs"],
        ["leaderboard", "--dataset", "synthetic-small"],
        ["data", "info", "synthetic-small"],
        [
            "data",
            "export",
            "synthetic-small",
            "--part",
            "train",
            "--out",
            str(home / "train.parquet"),
        ],
    ):
        result = cli(*args, expect=None)  # what is still readable may be read; never a traceback
        if result.exit_code:
            assert result.exit_code == 1
            _one_error(result, str(db), "truncated or damaged")
            failed += 1
    assert failed  # reading the truncated part is named


def test_disk_full_while_writing_is_named(cli, home, monkeypatch, tmp_path):
    import polars as pl

    recs = tmp_path / "r.csv"
    recs.write_text("user_id,item_id,score\n1,10,1\n")
    truth = tmp_path / "t.csv"
    truth.write_text("user_id,item_id\n1,10\n")

    def full(*args, **kwargs):
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "x.parquet"
    cli("data", "prepare", "synthetic-small")
    _one_error(
        cli("data", "export", "synthetic-small", "--part", "train", "--out", str(out), expect=1),
        "no space left on device",
    )

    def full_os(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_csv", full_os)
    _one_error(
        cli(
            "data",
            "export",
            "synthetic-small",
            "--part",
            "train",
            "--out",
            str(tmp_path / "x.csv"),
            expect=1,
        ),
        "no space left on device",
    )
