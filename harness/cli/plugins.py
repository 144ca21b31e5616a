"""``harness list``: the registered recommenders, their packages and parameters."""

from __future__ import annotations

import click

from harness.cli.output import block, console, echo_json, text


def _param_text(info) -> str:
    """One parameter per line (a narrow terminal cuts a value, never splits it): ``name=default``
    and the bounds it declares, ``factors=64 (>= 1)``."""
    parts = []
    for p in info.params:
        part = f"{p.name}" if p.required else f"{p.name}={p.default!r}"
        parts.append(part + (f" ({p.bounds})" if p.bounds else ""))
    return "\n".join(parts)


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
    table.add_column("parameters", no_wrap=True, overflow="ellipsis", max_width=34)
    for info in infos:
        package = (info.distribution or "?", info.version or "?") if wide else ()
        if info.error:
            error = text(f"error: {info.error}")
            error.stylize("red")
            table.add_row(info.name, *package, error, "")
        else:
            table.add_row(info.name, *package, text(info.description), block(_param_text(info)))
    out.print(table)


COMMANDS = [list_command]
