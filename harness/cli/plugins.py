"""``harness list``: the registered recommenders, their packages and parameters."""

from __future__ import annotations

import click

from harness.cli.output import console, echo_json


def _param_text(info) -> str:
    parts = []
    for p in info.params:
        parts.append(f"{p.name}" if p.required else f"{p.name}={p.default!r}")
    return "\n".join(parts)  # one per line: a narrow terminal cuts a value, never splits it


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """List the registered recommenders: name, package, version, description, parameters.

    A recommender whose package fails to import is listed with its error.
    """
    from harness.plugins import discover

    infos = discover()
    if as_json:
        echo_json([info.to_json() for info in infos])
        return
    from rich.table import Table

    out = console()
    wide = out.width >= 110  # narrower: package and version only in --json
    table = Table(title="recommenders (entry-point group harness.recommenders)")
    table.add_column("name", no_wrap=True)
    if wide:
        table.add_column("package", no_wrap=True, overflow="ellipsis", max_width=16)
        table.add_column("version", no_wrap=True, overflow="ellipsis", max_width=10)
    table.add_column("description", ratio=1, min_width=20)  # wraps between words
    table.add_column("parameters", no_wrap=True, overflow="ellipsis", max_width=26)
    for info in infos:
        package = (info.distribution or "?", info.version or "?") if wide else ()
        if info.error:
            table.add_row(info.name, *package, f"[red]error: {info.error}[/red]", "")
        else:
            table.add_row(info.name, *package, info.description, _param_text(info))
    out.print(table)


COMMANDS = [list_command]
