"""``harness list``: the registered recommenders, their packages and parameters."""

from __future__ import annotations

import click

from harness.cli.output import console, echo_json


def _param_text(info) -> str:
    parts = []
    for p in info.params:
        parts.append(f"{p.name}" if p.required else f"{p.name}={p.default!r}")
    return ", ".join(parts)


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

    table = Table(title="recommenders (entry-point group harness.recommenders)")
    for column in ("name", "package", "version", "description", "parameters"):
        table.add_column(column, overflow="fold")
    for info in infos:
        if info.error:
            table.add_row(info.name, info.distribution or "?", info.version or "?",
                          f"[red]error: {info.error}[/red]", "")
        else:
            table.add_row(info.name, info.distribution or "?", info.version or "?",
                          info.description, _param_text(info))
    console().print(table)


COMMANDS = [list_command]
