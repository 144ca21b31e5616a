"""``harness data`` end to end through the CLI."""

import json

import polars as pl

from harness.store.splits import split_meta


def test_prepare_info_list_export(cli, home, tmp_path):
    out = cli("data", "prepare", "synthetic-small", "--json").stdout
    meta = json.loads(out)
    assert meta["dataset"] == "synthetic-small" and meta["info"]["truth_rows"] > 0
    info = json.loads(cli("data", "info", "synthetic-small", "--json").stdout)
    assert info["fingerprint"] == meta["fingerprint"]
    text = cli("data", "info", "synthetic-small").stdout
    assert "cold users" in text and "density" in text
    listing = json.loads(cli("data", "list", "--json").stdout)
    row = next(r for r in listing if r["name"] == "synthetic-small")
    assert row["prepared"] == ["temporal"] and row["default_split"] == "temporal"
    assert {"ml-latest-small", "ml-100k", "ml-1m", "kion", "lastfm-2k", "synthetic-kion"} <= {
        r["name"] for r in listing
    }
    for part, cols in (
        ("train", {"user_id", "item_id", "timestamp", "weight"}),
        ("test", {"user_id", "cold"}),
        ("users", {"user_id", "age"}),
        ("items", {"item_id", "categories"}),
    ):
        target = tmp_path / f"{part}.parquet"
        cli("data", "export", "synthetic-small", "--part", part, "--out", str(target))
        assert cols <= set(pl.read_parquet(target).columns)
    cli("data", "export", "synthetic-small", "--part", "items", "--out", str(tmp_path / "i.csv"))
    assert "categories" in (tmp_path / "i.csv").read_text().splitlines()[0]


def test_bad_input_is_one_line_and_keeps_database(cli, home, tmp_path):
    cli("data", "prepare", "synthetic-small")
    before = split_meta(home, "synthetic-small")
    reg = tmp_path / "r.toml"
    reg.write_text("""
[synthetic-small]
format = "synthetic"
params = { n_users = 30, n_items = 10, n_interactions = 100, seed = 1 }
positive = "watched_pct > 1000"
  [synthetic-small.splits.temporal]
  protocol = "temporal"
  days = 7
""")
    result = cli("--datasets", str(reg), "data", "prepare", "synthetic-small", expect=1)
    assert result.stderr.startswith("error: [synthetic-small]: the filters leave no interactions")
    assert result.stderr.count("\n") == 1
    after = split_meta(home, "synthetic-small")
    assert after["fingerprint"] == before["fingerprint"] and after["info"] == before["info"]
    result = cli("data", "prepare", "nope", expect=1)
    assert "unknown dataset 'nope'" in result.stderr
    result = cli("data", "info", "ml-latest-small", expect=1)
    assert "harness data prepare ml-latest-small" in result.stderr
    result = cli("data", "prepare", "synthetic-small", "--split", "weekly", expect=1)
    assert "has no split 'weekly'" in result.stderr
    result = cli(
        "data",
        "export",
        "synthetic-small",
        "--part",
        "train",
        "--out",
        str(tmp_path / "x.txt"),
        expect=1,
    )
    assert "use a .parquet or .csv" in result.stderr


def test_home_option(cli, tmp_path):
    other = tmp_path / "elsewhere"
    cli("--home", str(other), "data", "prepare", "ml-latest-small")
    meta = split_meta(other, "ml-latest-small")
    # the default is per-user temporal: every test user is warm (the global cut leaves 92 of 118 cold)
    assert meta["split"] == "user-temporal" and meta["protocol"]["protocol"] == "ratio"
    assert meta["info"]["test_users"] == 608 and meta["info"]["cold_users"] == 0
    info = json.loads(cli("--home", str(other), "data", "info", "ml-latest-small", "--json").stdout)
    assert "rate in bursts" in info["protocol"]["note"]
    assert "why this" in cli("--home", str(other), "data", "info", "ml-latest-small").stdout
    cli("--home", str(other), "data", "prepare", "ml-latest-small", "--split", "temporal")
    old = split_meta(other, "ml-latest-small", "temporal")["info"]
    assert (old["test_users"], old["cold_users"]) == (118, 92)
