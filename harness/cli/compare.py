"""``harness compare`` and ``harness plot``: thin over :mod:`harness.board.compare` and
:mod:`harness.board.plots`."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import pass_context, resampling_options
from harness.cli.output import console, echo_json


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option(
    "--metric",
    default=None,
    help="Main metric, name@k (default ndcg@10); the other per-user metrics at its k follow.",
)
@click.option(
    "--segment", type=click.Choice(["all", "warm", "cold"]), default="all", show_default=True
)
@resampling_options()
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the users who went from a hit in B to a miss in A or back (user_id, change: hit_to_miss|miss_to_hit) to a .parquet or .csv file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (delta = a - b).")
@pass_context
def compare_command(ctx, run_a, run_b, metric, segment, resamples, seed, out_file, as_json):
    """Compare two runs on the same split user by user: means, difference with its 95% CI,
    p-value, wins/ties/losses, list overlap, and who went from a hit to a miss and back."""
    from harness.board.compare import compare
    from harness.errors import ConfigError

    if out_file and Path(out_file).suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out_file}: use a .parquet or .csv file name")
    result = compare(
        ctx.home, run_a, run_b, metric=metric, segment=segment, resamples=resamples, seed=seed
    )
    changed = result.pop("changed")
    if out_file:
        (changed.write_csv if out_file.endswith(".csv") else changed.write_parquet)(out_file)
        click.echo(f"wrote {changed.height:,} users to {out_file}", err=True)
    if as_json:
        echo_json(result)
        return
    from rich.table import Table

    a, b = result["a"], result["b"]
    name = lambda r: f"{r['recommender']} {r['run_id']}"  # noqa: E731
    t = Table(
        title=f"A = {name(a)}  vs  B = {name(b)}",
        box=None,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold underline",
        caption=f"{result['dataset']}/{result['split']}, {result['segment']} users "
        f"({result['users']:,}); delta = A - B, 95% paired-bootstrap CI, "
        f"randomization p ({result['resamples']} resamples, seed {result['seed']}); "
        "W/T/L: users A did better / as well / worse",
    )
    for col in ("metric", "A", "B", "A - B", "95% CI", "p", "W/T/L"):
        t.add_column(col, justify="left" if col == "metric" else "right", no_wrap=True)
    for m, r in result["metrics"].items():
        sure = r["ci"][0] > 0 or r["ci"][1] < 0
        t.add_row(
            m,
            f"{r['a']:.4f}",
            f"{r['b']:.4f}",
            f"{r['delta']:+.4f}",
            f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]",
            _p(r["p_value"]),
            f"{r['wins']}/{r['ties']}/{r['losses']}",
            style="bold" if sure else None,
        )
    out = console()
    out.print(t)
    ov = result["overlap"]
    parts = [f"{k} {v:.3f}" for k, v in ov.items() if v is not None]
    if parts:
        out.print("lists alike: " + ", ".join(parts) + " (1 = the same lists)")
    if result["hit_to_miss"] is not None:
        k = next(iter(result["metrics"])).split("@")[1]
        out.print(
            f"users with a hit@{k} in A but not in B: {result['miss_to_hit']:,}; "
            f"in B but not in A: {result['hit_to_miss']:,}"
            + ("" if out_file else " (--out FILE lists them)")
        )


@click.command("plot")
@click.option("--dataset", required=True)
@click.option("--split", default=None)
@click.option("--metric", default="ndcg@10", show_default=True)
@click.option(
    "--segment", type=click.Choice(["all", "warm", "cold"]), default="all", show_default=True
)
@resampling_options()
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False), required=True, help="A .png or .svg file."
)
@pass_context
def plot_command(ctx, dataset, split, metric, segment, resamples, seed, out_file):
    """Chart the board: the main metric with its 95% CI per run, and metric@k for the top runs
    (the charts of the HTML export)."""
    from harness.board import build
    from harness.board.plots import save
    from harness.errors import ConfigError

    if Path(out_file).suffix not in (".png", ".svg"):
        raise ConfigError(f"--out {out_file}: use a .png or .svg file name")
    board = build(
        ctx.home,
        ctx.check_dataset(dataset),
        split,
        metric=metric,
        segment=segment,
        resamples=resamples,
        seed=seed,
    )
    if not board.rows:
        raise ConfigError(f"no runs yet on {dataset}/{board.split}: nothing to plot")
    save(board, Path(out_file))
    click.echo(f"wrote {out_file}", err=True)


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


COMMANDS = [compare_command, plot_command]
