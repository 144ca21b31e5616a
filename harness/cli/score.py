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
    for notice in notices:
        out.print(f"[dim]{notice}[/dim]")


def _score_files(recs_path: Path, truth_path: Path, ks, catalog, categories, dialect="harness"):
    import polars as pl

    from harness.metrics import evaluate
    from harness.recs import read_table, validate_recommendations, validate_truth

    from harness.ids import align_ids

    # a dialect that counts a repeated truth pair twice needs the rows as given
    truth = validate_truth(read_table(truth_path), source=str(truth_path),
                           keep_repeats=dialect != "harness")
    raw = read_table(recs_path)
    if "user_id" in raw.columns and "item_id" in raw.columns and raw.height:
        # aligned before validation, so that a message names the row of the input file
        raw, truth = align_ids(raw, truth, source=str(recs_path), against=str(truth_path))
    recs, _ = validate_recommendations(raw, source=str(recs_path))
    train = None
    if catalog:
        train = read_table(Path(catalog))
        if "item_id" not in train.columns:
            raise ConfigError(f"{catalog}: needs an item_id column (and user_id for novelty)")
    cats = None
    if categories:
        cats = read_table(Path(categories))
        if "categories" not in cats.columns or "item_id" not in cats.columns:
            raise ConfigError(f"{categories}: needs item_id and categories columns")
        if cats.schema["categories"] == pl.Utf8:  # CSV: "a|b|c"
            cats = cats.with_columns(pl.col("categories").str.split("|"))
    cold = None if train is None or "user_id" in train.columns else pl.Series([], dtype=truth.schema["user_id"])
    return evaluate(recs, truth, ks=ks, train=train, cold_users=cold, item_categories=cats,
                    source=str(recs_path), dialect=dialect)


@click.command("score")
@click.option("--recs", "recs_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Recommendations: user_id, item_id, score or rank (parquet or CSV).")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path), help="Truth: user_id, item_id (parquet or CSV).")
@click.option("--k", "ks", multiple=True, type=click.IntRange(min=1), help="Cut-off; repeat for several (default 1 5 10 20 50 100).")
@click.option("--catalog", type=click.Path(dir_okay=False), help="Train interactions or items (item_id[, user_id]): coverage, gini, novelty, warm/cold.")
@click.option("--item-categories", "categories", type=click.Path(dir_okay=False), help="item_id, categories (list, or 'a|b' in CSV): diversity.")
@click.option("--dialect", type=click.Choice(DIALECT_NAMES), default="harness", show_default=True, help="Reproduce another library's metric definitions exactly (docs/metrics.md, Dialects).")
@click.option("--dataset", help="Score against a prepared dataset's truth and store the run (needs --name).")
@click.option("--split", help="Split of --dataset (default: its default split).")
@click.option("--name", help="Name of the stored external run.")
@click.option("--json", "as_json", is_flag=True, help="Print {metrics, segments} as JSON.")
@pass_context
def score_command(ctx, recs_path, truth_path, ks, catalog, categories, dialect, dataset, split, name,
                  as_json):
    """Score a recommendation file against a truth file (or a prepared dataset's hidden truth)."""
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
        from harness.runner import score_external

        ctx.check_dataset(dataset)

        result = score_external(ctx.home, recs_path, dataset, split, name, ks).to_json()
    elif truth_path:
        evaluation = _score_files(recs_path, truth_path, ks, catalog, categories, dialect)
        result, notices = evaluation.to_json(), evaluation.notices
    else:
        raise ConfigError("give --truth FILE, or --dataset D --name NAME")
    if as_json:
        echo_json(result)
    else:
        _render(result, notices)


COMMANDS = [score_command]
