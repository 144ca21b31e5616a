"""``harness score``: score a recommendation file against a truth file, like trec_eval."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import label_options, pass_context
from harness.config import MAX_K
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
        table.add_row(
            name, *(f"{segments[s][name]:.4f}" if name in segments[s] else "-" for s in segments)
        )
    out = console()
    out.print(table)
    from harness.cli.output import text

    for notice in notices:
        out.print(text(notice), style="dim")


@click.command("score")
@click.option(
    "--recs",
    "recs_path",
    required=True,
    help="Recommendations: user_id, item_id, score or rank (parquet or CSV, or a directory of parquet files; with --engine spark any URI Spark reads).",
)
@click.option(
    "--truth",
    "truth_path",
    help="Truth: user_id, item_id (parquet or CSV; with --engine spark also a directory or any URI Spark reads).",
)
@click.option(
    "--k",
    "ks",
    multiple=True,
    type=click.IntRange(min=1, max=MAX_K),
    help="Cut-off; repeat for several (default 1 5 10 20 50 100).",
)
@click.option(
    "--catalog",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Train interactions or items (item_id[, user_id]): coverage, gini, novelty, warm/cold.",
)
@click.option(
    "--item-categories",
    "categories",
    type=click.Path(dir_okay=False, path_type=Path),
    help="item_id, categories (list, or 'a|b' in CSV): diversity.",
)
@click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default="harness",
    show_default=True,
    help="Reproduce another library's metric definitions exactly (docs/metrics.md, Dialects).",
)
@click.option(
    "--dataset", help="Score against a prepared dataset's truth and store the run (needs --name)."
)
@click.option("--split", help="Split of --dataset (default: its default split).")
@click.option("--name", help="Name of the stored external run.")
@label_options("With --dataset: ")
@click.option("--json", "as_json", is_flag=True, help="Print {metrics, segments} as JSON.")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark"]),
    default="local",
    show_default=True,
    help="local: polars/numpy on this machine; spark: Spark SQL, for lists larger than one machine (pip install 'harness[spark]').",
)
@click.option(
    "--spark-master",
    "spark_master",
    help="Spark master URL for --engine spark (default: spark-submit's, else local[*]).",
)
@pass_context
def score_command(
    ctx,
    recs_path,
    truth_path,
    ks,
    catalog,
    categories,
    dialect,
    dataset,
    split,
    name,
    tags,
    note,
    as_json,
    engine,
    spark_master,
):
    """Score a recommendation file against a truth file (or a prepared dataset's hidden truth)."""
    from harness import scoring
    from harness.cli.output import echo_json
    from harness.metrics import DEFAULT_KS

    ks = tuple(ks) or DEFAULT_KS
    notices: list[str] = []
    if (tags or note is not None) and not dataset:
        raise ConfigError(
            "--tag and --note label a stored run: use them with --dataset D --name NAME"
        )
    if spark_master and engine != "spark":
        raise ConfigError("--spark-master needs --engine spark")
    if engine == "spark" and (dataset or not truth_path):
        raise ConfigError(
            "--engine spark scores files: give --recs and --truth "
            "(--dataset runs are scored by the local engine)"
        )
    if engine == "spark" and dialect != "harness":
        raise ConfigError(
            "--dialect: the Spark engine computes the harness definitions only; "
            "score with the local engine for another library's"
        )
    if dataset:
        if truth_path or not name:
            raise ConfigError("--dataset needs --name and no --truth")
        if dialect != "harness":
            raise ConfigError(
                "--dialect: a stored run is scored in the harness dialect; read it "
                f"in another with `harness leaderboard --dataset {dataset} "
                f"--dialect {dialect}`"
            )
        ctx.check_dataset(dataset)
        run = scoring.score_external(
            ctx.home, Path(recs_path), dataset, split, name, ks, tags=list(tags), note=note
        )
        result = run.to_json()
        notices = list((run.report or {}).get("notices") or [])
        from harness.board import DEFAULT_METRIC, build, position

        metric = DEFAULT_METRIC if DEFAULT_METRIC in run.metrics else f"ndcg@{max(ks)}"
        board = build(ctx.home, dataset, run.split, metric=metric)
        rank = position(board, run.run_id)
        if as_json:
            result = {**result, "rank": rank, "of": len(board.rows)}
        else:
            notices.append(
                f"run {run.run_id}: leaderboard position: {rank} of {len(board.rows)} by {metric}"
            )
            notices.append(
                f"stored as {name!r} on {dataset}/{run.split} "
                f"(`{ctx.board_command(dataset, split)}`)"
            )
    elif truth_path:
        if engine == "spark":  # URIs (hdfs://, s3a://) stay strings: a Path would fold '//'
            evaluation = scoring.score_files(
                recs_path,
                truth_path,
                ks=ks,
                catalog=catalog,
                categories=categories,
                dialect=dialect,
                engine=engine,
                master=spark_master,
            ).evaluation
        else:
            evaluation = scoring.score_files(
                Path(recs_path),
                Path(truth_path),
                ks=ks,
                catalog=catalog,
                categories=categories,
                dialect=dialect,
            ).evaluation
        result, notices = evaluation.to_json(), evaluation.notices
    else:
        raise ConfigError("give --truth FILE, or --dataset D --name NAME")
    if as_json:
        echo_json(result)
    else:
        _render(result, notices)


COMMANDS = [score_command]
