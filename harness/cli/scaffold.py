"""``harness new NAME``: scaffold a recommender plugin package (see :mod:`harness.scaffold`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory to create the package in (default: ./NAME). Must be empty or absent.",
)
def new_command(name: str, directory: Path | None) -> None:
    """Create a plugin package for recommender NAME: pyproject.toml with the entry point, a model
    that runs (popularity without the user's own items), and a test.

    Then: pip install -e DIR; harness list; harness submit NAME --dataset ml-latest-small.
    """
    from harness.scaffold import create

    target, files = create(name, directory)
    click.echo(f"created {target}")
    for path in files:
        click.echo(f"  {path.relative_to(target)}")
    click.echo("next:")
    click.echo(f"  pip install -e {target}")
    click.echo("  harness list")
    click.echo(f"  harness submit {name} --dataset ml-latest-small")


COMMANDS = [new_command]
