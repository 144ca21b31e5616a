"""``harness data``: list, prepare, inspect and export datasets."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.output import console, echo_json
from harness.errors import ConfigError, NotFoundError

PARTS = {
    "train": "train",
    "test": "test_users",
    "truth": "truth",
    "users": "users",
    "items": "items",
}


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
        default = entry["default_split"]
        rows.append(
            {
                "name": name,
                "format": entry["format"],
                "default_split": default,
                "splits": list(entry["splits"]),
                "prepared": [s for s in entry["splits"] if (name, s) in prepared],
                "description": entry.get("description", ""),
            }
        )
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
    meta = prepare(
        name,
        home=ctx.home,
        split=split,
        force=force,
        registry_file=ctx.datasets_file,
        progress=not as_json,
    )
    if as_json:
        echo_json(meta)
        return
    info = meta["info"]
    if meta.get("unchanged"):
        click.echo(
            f"unchanged: {meta['dataset']} split {meta['split']} is prepared with the same "
            f"fingerprint {meta['fingerprint'][:12]} (--force prepares it again)"
        )
        return
    click.echo(
        f"prepared {meta['dataset']} split {meta['split']}: train {info['train_rows']} rows, "
        f"truth {info['truth_rows']} rows for {info['test_users']} users "
        f"({info['cold_users']} cold); fingerprint {meta['fingerprint'][:12]}"
    )


@data_group.command("info")
@click.argument("name")
@click.option("--split", "split", help="Split name (default: the dataset's default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_command(name: str, split: str | None, as_json: bool) -> None:
    """Counts of a prepared split: users, items, density, time range, train/truth, warm/cold,
    why the split is what it is, and the smallest NDCG@10 difference it can detect."""
    from harness.board import detectable_difference
    from harness.store.splits import split_meta

    ctx = _ctx()
    meta = split_meta(ctx.home, ctx.check_dataset(name), split)
    mdd = detectable_difference(ctx.home, name, meta["split"])
    if as_json:
        echo_json({**meta, "detectable_difference": mdd})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=False, title=f"{name} / {meta['split']}")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in info_rows(meta, mdd):
        table.add_row(escape(label), escape(value))
    console().print(table)


def _protocol(p: dict) -> str:
    """A split protocol in words: "temporal, last 7 days", "ratio, each user's latest 20%"."""
    kind = p.get("protocol")
    if kind == "temporal":
        text = (
            f"temporal, last {p['days']:g} days"
            if "days" in p
            else f"temporal, cut at the {p['quantile']:g} time quantile"
        )
    elif kind == "leave-last":
        text = f"leave-last, each user's last {p.get('n', 1)}"
    elif kind == "ratio":
        text = f"ratio, each user's latest {p.get('test_ratio', 0.2):.0%}"
    elif kind == "random":
        text = f"random {p.get('test_ratio', 0.2):.0%}, seed {p.get('seed', 0)}"
    else:
        text = str(kind)
    if not p.get("exclude_seen", True):
        text += "; truth keeps items seen in train"
    return text


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    return "-" if value is None else str(value)


def info_rows(meta: dict, mdd: dict | None = None) -> list[tuple[str, str]]:
    """``data info`` as (label, text) rows: words and numbers, no Python dicts."""
    info = dict(meta["info"])
    rows = [
        ("fingerprint", meta["fingerprint"][:16]),
        ("protocol", _protocol(meta["protocol"])),
        (
            "cutoff",
            _value(meta["cutoff"])
            if meta["cutoff"] is not None
            else "- (per-user or random split)",
        ),
    ]
    if meta["protocol"].get("note"):
        rows.append(("why this split", str(meta["protocol"]["note"])))
    if mdd and mdd["value"] is not None:
        source = (
            f"from the per-user spread of {mdd['reference']}"
            if mdd["reference"]
            else f"at most: a bound from {meta['info'].get('test_users', 0):,} test users; "
            "submit popular for an estimate"
        )
        rows.append(
            (
                f"detectable {mdd['metric']}",
                f"~{mdd['value']:.4f}: a smaller difference between two runs is likely to go "
                f"unnoticed (80% power, paired test at 0.05; {source})",
            )
        )
    origin = info.pop("source", None) or {}
    for key, value in info.items():
        if key == "cleaning":
            steps = (value or {}).items()
            rows.append(
                (
                    "cleaning",
                    " → ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in steps) or "-",
                )
            )
        elif key == "is_default":
            rows.append(("default split", _value(value)))
        elif key == "prepare_seconds":
            rows.append(("prepare seconds", f"{value:.1f}"))
        else:
            rows.append((key.replace("_", " "), _value(value)))
    rows.append(
        (
            "source",
            ", ".join(f"{k} {v}" for k, v in origin.items() if k in ("embedded", "path", "url"))
            or "generated",
        )
    )
    if meta.get("created_at"):
        rows.append(("prepared at", _value(meta["created_at"])))
    return rows


@data_group.command("export")
@click.argument("name")
@click.option(
    "--part",
    type=click.Choice(list(PARTS)),
    required=True,
    help="train, test (test users), truth, users or items.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Output file: .parquet or .csv.",
)
@click.option("--split", "split", help="Split name (default: the dataset's default).")
def export_command(name: str, part: str, out: str, split: str | None) -> None:
    """Write one part of a prepared split to a parquet or CSV file."""
    from harness.store.splits import load_split

    path = Path(out)
    if path.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: use a .parquet or .csv file name")
    ctx = _ctx()
    frame = getattr(
        load_split(ctx.home, ctx.check_dataset(name), split, parts=[PARTS[part]]), PARTS[part]
    )
    if frame is None:
        has = [p for p in PARTS if p not in ("users", "items")]
        has += [
            p
            for p in ("users", "items")
            if getattr(load_split(ctx.home, name, split, parts=[p]), p) is not None
        ]
        raise NotFoundError(
            f"{name} has no {part[:-1]} features: its source ships none "
            f"(parts it has: {', '.join(has)})"
        )
    if path.suffix == ".csv":
        import polars as pl

        nested = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
        frame = frame.with_columns(pl.col(c).list.join("|") for c in nested)
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    click.echo(f"wrote {frame.height} rows to {path}")


COMMANDS = [data_group]
