"""``harness score``: score a recommendation file against a truth file, like trec_eval."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import pass_context
from harness.errors import ConfigError

# the names only, without importing the metrics stack at CLI start-up
DIALECT_NAMES = ("harness", "rectools", "ranx", "trec", "recbole", "msrec", "lenskit")


def _render(result: dict, notices=()) -> None:
    """A Rich table: one row per metric, one column per segment."""
    from rich.table import Table

    from harness.cli.output import console

    segments = result["segments"]
    table = Table("metric", *segments)
    for name in result["metrics"]:
        table.add_row(name, *(f"{segments[s][name]:.4f}" if name in segments[s] else "-"
                              for s in segments))
    out = console()
    out.print(table)
    from harness.cli.output import text

    for notice in notices:
        out.print(text(notice), style="dim")


@click.command("score")
@click.option("--recs", "recs_path", required=True, type=click.Path(path_type=Path), help="Recommendations: user_id, item_id, score or rank (parquet or CSV; or a directory of parquet files).")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path), help="Truth: user_id, item_id (parquet or CSV).")
@click.option("--k", "ks", multiple=True, type=click.IntRange(min=1), help="Cut-off; repeat for several (default 1 5 10 20 50 100).")
@click.option("--catalog", type=click.Path(dir_okay=False, path_type=Path), help="Train interactions or items (item_id[, user_id]): coverage, gini, novelty, warm/cold.")
@click.option("--item-categories", "categories", type=click.Path(dir_okay=False, path_type=Path), help="item_id, categories (list, or 'a|b' in CSV): diversity.")
@click.option("--dialect", type=click.Choice(DIALECT_NAMES), default="harness", show_default=True, help="Reproduce another library's metric definitions exactly (docs/metrics.md, Dialects).")
@click.option("--dataset", help="Score against a prepared dataset's truth and store the run (needs --name).")
@click.option("--split", help="Split of --dataset (default: its default split).")
@click.option("--name", help="Name of the stored external run.")
@click.option("--json", "as_json", is_flag=True, help="Print {metrics, segments} as JSON.")
@pass_context
def score_command(ctx, recs_path, truth_path, ks, catalog, categories, dialect, dataset, split, name,
                  as_json):
    """Score a recommendation file against a truth file (or a prepared dataset's hidden truth)."""
    from harness import scoring
    from harness.cli.output import echo_json
    from harness.metrics import DEFAULT_KS

    ks = tuple(ks) or DEFAULT_KS
    notices: list[str] = []
    if dataset:
        if truth_path or not name:
            raise ConfigError("--dataset needs --name and no --truth")
        if dialect != "harness":
            raise ConfigError("--dialect: a stored run is scored in the harness dialect; read it "
                              f"in another with `harness leaderboard --dataset {dataset} "
                              f"--dialect {dialect}`")
        ctx.check_dataset(dataset)
        run = scoring.score_external(ctx.home, recs_path, dataset, split, name, ks)
        result = run.to_json()
        notices = list((run.report or {}).get("notices") or [])
        from harness.board import DEFAULT_METRIC, build, position

        metric = DEFAULT_METRIC if DEFAULT_METRIC in run.metrics else f"ndcg@{max(ks)}"
        board = build(ctx.home, dataset, run.split, metric=metric)
        rank = position(board, run.run_id)
        if as_json:
            result = {**result, "rank": rank, "of": len(board.rows)}
        else:
            notices.append(f"run {run.run_id}: leaderboard position: {rank} of "
                           f"{len(board.rows)} by {metric}")
            notices.append(f"stored as {name!r} on {dataset}/{run.split} "
                           f"(`{ctx.board_command(dataset, split)}`)")
    elif truth_path:
        evaluation = scoring.score_files(recs_path, truth_path, ks=ks, catalog=catalog,
                                         categories=categories, dialect=dialect).evaluation
        result, notices = evaluation.to_json(), evaluation.notices
    else:
        raise ConfigError("give --truth FILE, or --dataset D --name NAME")
    if as_json:
        echo_json(result)
    else:
        _render(result, notices)


COMMANDS = [score_command]
