"""Leaderboard, runs and show through the CLI: ranking, baseline marking, fingerprints never
mixed, every export format (HTML checked structurally), --json shapes per DESIGN.md."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser

import pytest
from test_runner import GOOD


def test_leaderboard_json_ranks_and_compares_to_best_baseline(cli, board):
    out = json.loads(cli("leaderboard", "--dataset", board, "--format", "json").stdout)
    rows = out["rows"]
    assert [r["recommender"] for r in rows] == ["mine", "popular", "random"]  # no stale, no failed
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert out["best_baseline"] == pytest.approx(0.10)
    assert rows[0]["vs_best_baseline"] == pytest.approx(0.15)
    assert [r["baseline"] for r in rows] == [False, True, True]
    assert rows[0]["metrics"]["recall@10"] == pytest.approx(0.125)


def test_leaderboard_segment_and_metric(cli, board):
    out = json.loads(cli("leaderboard", "--dataset", board, "--segment", "warm", "--json").stdout)
    assert out["rows"][0]["metrics"]["ndcg@10"] == pytest.approx(0.35)
    res = cli("leaderboard", "--dataset", board, "--metric", "nope@3", expect=1)
    assert "nope@3" in res.stderr and "ndcg@10" in res.stderr


def test_leaderboard_markdown_csv_table(cli, board, tmp_path):
    md = cli("leaderboard", "--dataset", board, "--format", "markdown").stdout
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(lines) == 2 + 3 and "popular (baseline)" in lines[3] and "+0.1500" in lines[2]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    align = dict(zip(header, lines[1].strip("|").split("|")))
    assert align["vs best baseline"] == align["ndcg@10"] == align["fit s"] == "---:"
    assert align["recommender"] == align["date"] == "---"
    assert "| 2026-01-01 00:00 |" in lines[2]  # minutes, not ISO seconds with a T
    rows = list(
        csv.DictReader(
            io.StringIO(cli("leaderboard", "--dataset", board, "--format", "csv").stdout)
        )
    )
    assert [r["run_id"] for r in rows] == ["r-mine", "r-pop", "r-rand"]
    assert float(rows[0]["ndcg@10"]) == pytest.approx(0.25)
    table = cli("leaderboard", "--dataset", board).stdout
    assert "mine" in table and "stale" not in table


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.rows, self.external = [], [], []
        self._row = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag in ("script", "link", "img") or attrs.get("src"):
            self.external.append(tag)
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


def test_leaderboard_html_is_one_self_contained_page(cli, board, tmp_path):
    out = tmp_path / "board.html"
    cli("leaderboard", "--dataset", board, "--format", "html", "--out", str(out))
    page = _Cells()
    page.feed(out.read_text())
    assert page.tags[:2] == ["html", "head"] and "style" in page.tags and not page.external
    header, *body = page.rows
    assert header[:5] == ["rank", "band", "recommender", "params", "ndcg@10"]
    assert [row[2] for row in body] == ["mine", "popular (baseline)", "random (baseline)"]
    assert all(len(row) == len(header) for row in body)
    text = out.read_text()
    # numeric headers align with their numbers; the main metric stands out
    assert (
        '<th class="num main">ndcg@10</th>' in text
        and '<th class="num">vs best baseline</th>' in text
    )
    # two users of equal value: a point CI
    assert '<td class="num main">0.2500 ±0.0000</td>' in text and "<th>recommender</th>" in text
    assert 'name="viewport"' in text and "grey italics" in text


def test_runs_and_show(cli, board):
    runs = json.loads(cli("runs", "--json").stdout)
    assert {r["run_id"]: r["status"] for r in runs}["r-fail"] == "failed"
    shown = json.loads(cli("show", "r-mine", "--json").stdout)
    assert shown["metrics"] == {"ndcg@10": 0.25, "recall@10": 0.125}
    assert shown["segments"]["warm"] == {"ndcg@10": pytest.approx(0.35)}
    text = cli("show", "r-fail").stdout
    assert "failed" in text and "recommender raised boom" in text
    mine = cli("show", "r-mine").stdout
    assert "1.00 s" in mine and "a=1" in mine and "user_metric_names" not in mine
    head = next(line for line in mine.splitlines() if "metric" in line and "warm" in line)
    assert head.index(" all ") < head.index(" warm ")  # segments in the order all, warm, cold
    assert "r-fail" in cli("runs").stdout
    assert "not found" in cli("show", "zzz", expect=1).stderr


def test_submit_cli_json(cli, dataset, register_plugins):
    register_plugins({"good": GOOD})
    out = json.loads(
        cli("submit", "good", "--dataset", dataset, "--k", "5", "-p", "n=3", "--json").stdout
    )
    assert out["status"] == "ok" and out["rank"] == 1 and out["of"] == 1
    assert out["metrics"] == out["segments"]["all"]
    text = cli("submit", "good", "--dataset", dataset, "--k", "5", "-p", "n=3").stdout
    assert "leaderboard: rank" in text and "of 2 (band" in text
    assert "short lists" in text  # 3 items asked 5: reported, not fatal
    shown = cli("show", out["run_id"]).stdout
    assert f"users with lists {out['report']['validation']['users_with_lists']:,}" in shown
    res = cli("submit", "good", "--dataset", dataset, "-p", "bad", expect=1)
    assert "error:" in res.stderr
