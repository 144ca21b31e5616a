"""Tags and notes on runs: ``--tag``/``--note`` on submit and on ``score --dataset``, stored with
the run, shown by ``show`` and ``runs``, carried by the board exports, filtered by
``leaderboard --tag`` and ``runs --tag``, changed by ``harness tag``; malformed ones are one
``error:`` line naming them, exit code 2, nothing stored."""

from __future__ import annotations

import csv
import io
import json

import polars as pl
import pytest

from harness import labels
from harness.errors import UsageError
from harness.store import connect
from harness.store import runs as store

# -- the rules --------------------------------------------------------------------------------


def test_tags_are_validated_deduplicated_and_kept_in_order():
    assert labels.check_tags(["sweep-1", "v2.0", "team:recs", "A_b", "sweep-1"]) == [
        "sweep-1",
        "v2.0",
        "team:recs",
        "A_b",
    ]
    assert labels.check_tags("one") == ["one"]
    assert labels.check_tags(None) == [] and labels.check_tags([]) == []
    assert labels.check_tags(["x" * 40]) == ["x" * 40]


@pytest.mark.parametrize(
    "bad", ["", "two words", "-leading", "+plus", "x" * 41, "a/b", "tab\there", "é", "a,b"]
)
def test_a_bad_tag_is_named_in_one_line(bad):
    with pytest.raises(UsageError) as info:
        labels.check_tags(["fine", bad])
    message = str(info.value)
    assert message.startswith("--tag ") and "a tag is 1-40 letters" in message
    assert repr(bad[:59])[:-1] in message and "\n" not in message
    assert UsageError.exit_code == 2


def test_too_many_tags():
    with pytest.raises(UsageError, match="at most 20 tags per run, got 21"):
        labels.check_tags([f"t{i}" for i in range(21)])


def test_notes_are_one_line_and_capped():
    assert labels.check_note("  a note  ") == "a note"
    assert labels.check_note("") is None and labels.check_note(None) is None
    assert labels.check_note("x" * 500) == "x" * 500
    with pytest.raises(UsageError, match="--note is 501 characters long; at most 500"):
        labels.check_note("x" * 501)
    with pytest.raises(
        UsageError, match=r"one line of printable text \(found '\\n' at character 4\)"
    ):
        labels.check_note("two\nlines")
    with pytest.raises(UsageError, match="printable"):
        labels.check_note("bell\x07")


# -- stored, shown, filtered ------------------------------------------------------------------


def _board_json(cli, dataset, *args):
    return json.loads(cli("leaderboard", "--dataset", dataset, "--json", *args).stdout)


def test_leaderboard_and_runs_filter_by_tag(board, home, cli):
    store.retag(home, "r-mine", ["mine", "sweep"], [])
    store.retag(home, "r-pop", ["sweep"], [])
    store.retag(home, "r-fail", ["sweep"], [])
    everything = _board_json(cli, board)
    assert {r["run_id"] for r in everything["rows"]} == {"r-mine", "r-pop", "r-rand"}
    assert everything["tagged"] == []
    swept = _board_json(cli, board, "--tag", "sweep")
    assert [r["run_id"] for r in swept["rows"]] == ["r-mine", "r-pop"]  # failed runs never rank
    assert [r["rank"] for r in swept["rows"]] == [1, 2]
    assert swept["rows"][0]["tags"] == ["mine", "sweep"] and swept["tagged"] == ["sweep"]
    both = _board_json(cli, board, "--tag", "sweep", "--tag", "mine")
    assert [r["run_id"] for r in both["rows"]] == ["r-mine"]
    none = cli("leaderboard", "--dataset", board, "--tag", "nobody")
    assert none.stdout.startswith(f"no runs tagged nobody on {board}/")
    table = cli("leaderboard", "--dataset", board, "--tag", "sweep").stdout
    assert "runs tagged sweep" in table and "random (b)" not in table and "popular (b)" in table
    runs = json.loads(cli("runs", "--tag", "sweep", "--json").stdout)
    assert sorted(r["run_id"] for r in runs) == ["r-fail", "r-mine", "r-pop"]
    assert [r["run_id"] for r in json.loads(cli("runs", "--tag", "mine", "--json").stdout)] == [
        "r-mine"
    ]
    bad = cli("leaderboard", "--dataset", board, "--tag", "no good", expect=2)
    assert bad.stderr.strip().splitlines() == [
        "error: --tag 'no good': a tag is 1-40 letters, digits, '.', '_', ':' or '-', "
        "starting with a letter or digit"
    ]


def test_exports_carry_tags_and_notes_escaped(board, home, cli):
    store.retag(
        home, "r-mine", ["exp1"], [], note="<script>alert(1)</script> | [red]x[/red]", set_note=True
    )
    md = cli("leaderboard", "--dataset", board, "--format", "markdown").stdout
    header = next(line for line in md.splitlines() if line.startswith("| rank"))
    assert "| tags |" in header and "| note |" in header
    mine = next(line for line in md.splitlines() if "mine" in line and "r-mine" in line)
    assert "exp1" in mine and "\\| [red]x[/red]" in mine
    rows = list(
        csv.DictReader(
            io.StringIO(cli("leaderboard", "--dataset", board, "--format", "csv").stdout)
        )
    )
    by_id = {r["run_id"]: r for r in rows}
    assert by_id["r-mine"]["tags"] == "exp1"
    assert by_id["r-mine"]["note"] == "<script>alert(1)</script> | [red]x[/red]"
    assert by_id["r-pop"]["tags"] == "" and by_id["r-pop"]["note"] == ""
    page = cli("leaderboard", "--dataset", board, "--format", "html").stdout
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    table = cli("leaderboard", "--dataset", board, "--columns", "rank,recommender,tags,note,run")
    assert "[red]x[/red]" in table.stdout  # markup from a user is printed, never applied
    plain = cli("leaderboard", "--dataset", board, "--columns", "rank,run,tags").stdout
    assert "exp1" in plain


def test_boards_without_tags_have_no_tags_or_note_column(board, cli):
    md = cli("leaderboard", "--dataset", board, "--format", "markdown").stdout
    header = next(line for line in md.splitlines() if line.startswith("| rank"))
    assert "tags" not in header and "note" not in header


def test_harness_tag_adds_removes_and_sets_the_note(board, home, cli):
    out = cli("tag", "r-mine", "+a", "b", "--note", "first try").stdout
    assert out.strip() == "run r-mine: tags a, b; note: first try"
    out = cli("tag", "r-mine", "-a", "+c").stdout
    assert out.strip() == "run r-mine: tags b, c; note: first try"
    assert store.get_run(home, "r-mine").tags == ["b", "c"]
    cli("tag", "r-mine", "--note", "")
    assert store.get_run(home, "r-mine").note is None
    bad = cli("tag", "r-mine", "+no way", expect=2)
    assert "--tag 'no way'" in bad.stderr
    assert cli("tag", "r-mine", expect=2).stderr.startswith("error: nothing to change")
    assert store.get_run(home, "r-mine").tags == ["b", "c"]


def test_runs_stored_before_tags_read_as_untagged(board, home, cli):
    with connect(home) as con:  # what migration 5 leaves on an older run: NULL, not []
        con.execute("UPDATE runs SET tags = NULL, note = NULL")
    run = store.get_run(home, "r-mine")
    assert run.tags == [] and run.note is None
    assert [r.run_id for r in store.list_runs(home, tags=["x"])] == []
    assert "tags" not in cli("show", "r-mine").stdout


# -- end to end: submit, score --dataset, the Python API ----------------------------------------


def test_submit_stores_tags_and_note_and_show_prints_them(dataset, home, cli):
    note = "first [bold]try[/bold]"
    out = json.loads(
        cli(
            "submit", "popular", "--dataset", dataset, "--k", "10", "--sandbox", "none",
            "--tag", "base", "--tag", "v1", "--tag", "base", "--note", note, "--json",
        ).stdout
    )  # fmt: skip
    assert out["tags"] == ["base", "v1"] and out["note"] == note
    shown = cli("show", out["run_id"]).stdout
    assert "base, v1" in shown and note in shown  # Rich markup printed literally
    listing = cli("runs").stdout
    assert "tags" in listing and "base, v1" in listing and "first" in listing
    assert json.loads(cli("show", out["run_id"], "--json").stdout)["tags"] == ["base", "v1"]


def test_a_bad_tag_or_note_on_submit_stores_nothing_and_starts_no_worker(
    dataset, home, cli, no_worker
):
    result = cli("submit", "popular", "--dataset", dataset, "--tag", "a b", expect=2)
    assert result.stderr.strip().splitlines() == [
        "error: --tag 'a b': a tag is 1-40 letters, digits, '.', '_', ':' or '-', "
        "starting with a letter or digit"
    ]
    result = cli("submit", "popular", "--dataset", dataset, "--note", "n" * 501, expect=2)
    assert result.stderr.strip() == "error: --note is 501 characters long; at most 500"
    assert store.list_runs(home) == []


def test_score_dataset_stores_tags_and_note(dataset, home, cli, tmp_path):
    from harness.store.splits import load_split

    users = load_split(home, dataset, parts=("test_users", "train")).part("test_users")
    item = load_split(home, dataset, parts=("train",)).part("train")["item_id"][0]
    recs = tmp_path / "recs.parquet"
    users.select("user_id").with_columns(
        pl.lit(item).alias("item_id"), pl.lit(1.0).alias("score")
    ).write_parquet(recs)
    out = json.loads(
        cli(
            "score", "--recs", str(recs), "--dataset", dataset, "--name", "nb",
            "--tag", "notebook", "--note", "from a cell", "--json",
        ).stdout
    )  # fmt: skip
    assert out["tags"] == ["notebook"] and out["note"] == "from a cell"
    rows = _board_json(cli, dataset, "--tag", "notebook")["rows"]
    assert [r["recommender"] for r in rows] == ["nb"]
    bad = cli(
        "score", "--recs", str(recs), "--dataset", dataset, "--name", "nb2", "--tag", "?", expect=2
    )
    assert bad.stderr.startswith("error: --tag '?'")
    assert [r.recommender for r in store.list_runs(home)] == ["nb"]
    alone = cli("score", "--recs", str(recs), "--truth", str(recs), "--tag", "x", expect=1)
    assert "--tag and --note label a stored run" in alone.stderr


def test_python_api_tags_and_notes(dataset, home):
    import harness

    run = harness.submit(
        "popular", dataset, k=10, sandbox="none", progress=False, tags="api", note="from python"
    )
    assert run.record.tags == ["api"] and run.record.note == "from python"
    frame = harness.runs(tags=["api"])
    assert frame["run_id"].to_list() == [run.run_id]
    assert frame["tags"].to_list() == [["api"]] and frame["note"].to_list() == ["from python"]
    board = harness.leaderboard(dataset, tags="api").to_polars()
    assert board["tags"].to_list() == [["api"]]
    assert harness.leaderboard(dataset, tags="other").to_polars().height == 0
    with pytest.raises(UsageError, match="--tag 'no good'"):
        harness.submit("popular", dataset, tags=["no good"], progress=False, sandbox="none")
    assert len(store.list_runs(home)) == 1
