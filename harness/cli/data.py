"""``harness data``: list, prepare, inspect and export datasets."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.output import console, echo_json
from harness.errors import ConfigError, NotFoundError

PARTS = {"train": "train", "test": "test_users", "truth": "truth", "users": "users", "items": "items"}


def _ctx():
    """The root group's context object (home, user registry file)."""
    return click.get_current_context().find_root().obj


@click.group("data")
def data_group() -> None:
    """Datasets: list the registry, prepare splits, inspect and export them."""


@data_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(as_json: bool) -> None:
    """Datasets in the registry, with their splits and whether they are prepared."""
    from harness.datasets import load_registry
    from harness.store.splits import list_splits

    ctx = _ctx()
    prepared = {(s["dataset"], s["split"]): s for s in list_splits(ctx.home)}
    rows = []
    for name, entry in load_registry(ctx.datasets_file).items():
        default = entry.get("default_split", next(iter(entry["splits"])))
        rows.append({"name": name, "format": entry["format"], "default_split": default,
                     "splits": list(entry["splits"]),
                     "prepared": [s for s in entry["splits"] if (name, s) in prepared],
                     "description": entry.get("description", "")})
    if as_json:
        echo_json(rows)
        return
    from rich.table import Table

    table = Table("dataset", "format", "splits (default first)", "prepared")
    for r in rows:
        splits = [r["default_split"]] + [s for s in r["splits"] if s != r["default_split"]]
        table.add_row(r["name"], r["format"], ", ".join(splits), ", ".join(r["prepared"]) or "-")
    console().print(table)


@data_group.command("prepare")
@click.argument("name")
@click.option("--split", "split", help="Split protocol name (default: the dataset's default).")
@click.option("--force", is_flag=True, help="Prepare again even if the fingerprint is unchanged.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def prepare_command(name: str, split: str | None, force: bool, as_json: bool) -> None:
    """Load, filter and split dataset NAME; store train and hidden truth in the database."""
    from harness.datasets import prepare

    ctx = _ctx()
    meta = prepare(name, home=ctx.home, split=split, force=force,
                   registry_file=ctx.datasets_file, progress=not as_json)
    if as_json:
        echo_json(meta)
        return
    info = meta["info"]
    click.echo(f"prepared {meta['dataset']} split {meta['split']}: train {info['train_rows']} rows, "
               f"truth {info['truth_rows']} rows for {info['test_users']} users "
               f"({info['cold_users']} cold); fingerprint {meta['fingerprint'][:12]}")


@data_group.command("info")
@click.argument("name")
@click.option("--split", "split", help="Split name (default: the dataset's default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_command(name: str, split: str | None, as_json: bool) -> None:
    """Counts of a prepared split: users, items, density, time range, train/truth, warm/cold."""
    from harness.store.splits import split_meta

    meta = split_meta(_ctx().home, name, split)
    if as_json:
        echo_json(meta)
        return
    from rich.table import Table

    table = Table("field", "value", title=f"{name} / {meta['split']}")
    protocol = {k: v for k, v in meta["protocol"].items() if k != "note"}
    for key, value in (("fingerprint", meta["fingerprint"]), ("cutoff", meta["cutoff"]),
                       ("protocol", protocol)):
        table.add_row(key, str(value))
    if meta["protocol"].get("note"):
        table.add_row("why this split", meta["protocol"]["note"])
    for key, value in meta["info"].items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        table.add_row(key, str(value))
    console().print(table)


@data_group.command("export")
@click.argument("name")
@click.option("--part", type=click.Choice(list(PARTS)), required=True,
              help="train, test (test users), truth, users or items.")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="Output file: .parquet or .csv.")
@click.option("--split", "split", help="Split name (default: the dataset's default).")
def export_command(name: str, part: str, out: str, split: str | None) -> None:
    """Write one part of a prepared split to a parquet or CSV file."""
    from harness.store.splits import load_split

    path = Path(out)
    if path.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: use a .parquet or .csv file name")
    frame = getattr(load_split(_ctx().home, name, split, parts=[PARTS[part]]), PARTS[part])
    if frame is None:
        raise NotFoundError(f"dataset {name!r} has no {part} table")
    if path.suffix == ".csv":
        import polars as pl

        nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
        frame = frame.with_columns(pl.col(c).list.join("|") for c in nested)
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    click.echo(f"wrote {frame.height} rows to {path}")


COMMANDS = [data_group]
