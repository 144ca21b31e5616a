"""The ``harness`` command. Commands are thin: parse options, call one library function, render.

Each command group lives in its own module; this one defines the root group, the global options
and the single place where a :class:`~harness.errors.HarnessError` becomes a one-line error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness import __version__
from harness.config import resolve_home
from harness.errors import HarnessError


class Context:
    """Global options, resolved lazily so that ``--help`` never touches the disk."""

    def __init__(self, home: str | None, datasets: str | None) -> None:
        self._home = home
        self.datasets_file: Path | None = Path(datasets) if datasets else None

    @property
    def home(self) -> Path:
        """The home; the first use also sweeps the jobs a killed submission left behind."""
        home = resolve_home(self._home)
        if not getattr(self, "_swept", False):
            from harness.runner.jobs import sweep

            sweep(home)
            self._swept = True
        return home

    def board_command(self, dataset: str, split: str | None = None) -> str:
        """The command that shows the board a run landed on: the same home, registry and split."""
        import shlex

        words = ["harness"]
        if self._home:
            words += ["--home", str(self._home)]
        if self.datasets_file:
            words += ["--datasets", str(self.datasets_file)]
        words += ["leaderboard", "--dataset", dataset]
        if split:
            words += ["--split", split]
        return " ".join(shlex.quote(w) for w in words)

    def check_dataset(self, name: str) -> str:
        """``name`` when it is registered or prepared; else NotFoundError "unknown dataset" with
        the closest names (never a hint to prepare a name that does not exist)."""
        from harness.datasets.registry import load_registry, unknown_dataset
        from harness.store.splits import list_splits

        known = set(load_registry(self.datasets_file))
        if name in known:
            return name
        prepared = {s["dataset"] for s in list_splits(self.home)}
        if name in prepared:
            return name
        from harness.errors import NotFoundError

        raise NotFoundError(unknown_dataset(name, known | prepared))


def fail(message: str, code: int) -> None:
    """The one way a command ends on bad input: ``error: ...`` on one line of stderr, exit code
    ``code``. Control characters (from a file or a plugin) are printed escaped."""
    from harness.cli.output import escape

    click.echo(f"error: {escape(message)}", err=True)
    sys.exit(code)


def _show_warnings() -> None:
    """HarnessWarning (input accepted but probably not meant) prints as one ``warning:`` line."""
    import warnings

    from harness.cli.output import escape
    from harness.errors import HarnessWarning

    default = warnings.showwarning
    if getattr(default, "harness", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, HarnessWarning):
            click.echo(f"warning: {escape(str(message))}", err=True)
        else:
            default(message, category, filename, lineno, file, line)

    show.harness = True  # type: ignore[attr-defined]
    warnings.showwarning = show
    warnings.simplefilter("always", HarnessWarning)


class HarnessGroup(click.Group):
    """Turns input errors into ``error: ...`` on stderr and exit code 1, and usage errors (a
    missing or out-of-range option, an unknown command) into one such line and exit code 2,
    without a traceback or Click's usage block."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        _show_warnings()
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # `harness` or `harness data` alone
            click.echo(exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            ctx = exc.ctx
            where = ctx.command_path if ctx is not None else "harness"
            fail(f"{exc.format_message()} (see `{where} --help`)", exc.exit_code)
        except click.ClickException as exc:  # e.g. a file option that cannot be opened
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", 1)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:  # an environment failure is not our bug: name it, no traceback
            from harness.errors import disk_full

            if not disk_full(exc):
                raise
            fail(
                "no space left on device: free space in the harness home (or where --out "
                "writes) and run the command again; an interrupted write was not stored",
                1,
            )


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Home directory (database, cache, runs). Default: $HARNESS_HOME or the user data dir.",
)
@click.option(
    "--datasets",
    "datasets",
    type=click.Path(dir_okay=False),
    envvar="HARNESS_DATASETS",
    help="Your own dataset registry (TOML); its entries add to or override the shipped ones. Default: $HARNESS_DATASETS.",
)
@click.version_option(__version__, prog_name="harness")
@click.pass_context
def main(ctx: click.Context, home: str | None, datasets: str | None) -> None:
    """harness: an offline leaderboard for recommender systems."""
    ctx.obj = Context(home, datasets)


pass_context = click.make_pass_decorator(Context)


def resampling_options(help: str = "Bootstrap and randomization resamples."):
    """``--ci-resamples N --seed S`` of every command that draws CIs or rank bands (the default
    is harness.stats.DEFAULT_RESAMPLES, written here so that the CLI starts without numpy)."""

    def decorate(command):
        command = click.option(
            "--seed", type=int, default=0, show_default=True, help="Seed of the resampling."
        )(command)
        return click.option(
            "--ci-resamples",
            "resamples",
            type=click.IntRange(min=1),
            default=1000,
            show_default=True,
            help=help,
        )(command)

    return decorate


def tag_filter(command):
    """``--tag TAG``... of the commands that list runs: only the runs carrying all of them."""
    return click.option(
        "--tag",
        "tags",
        multiple=True,
        metavar="TAG",
        help="Only runs carrying TAG (repeat: runs carrying all of them).",
    )(command)


def label_options(prefix: str = ""):
    """``--tag TAG``... and ``--note TEXT`` of the commands that store a run (harness.labels)."""

    def decorate(command):
        def say(text: str) -> str:
            return prefix + text if prefix else text[0].upper() + text[1:]

        command = click.option(
            "--note", default=None, metavar="TEXT", help=say("one line about the run.")
        )(command)
        return click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="TAG",
            help=say(
                "label the run (repeatable; letters, digits, . _ : -); "
                "`leaderboard --tag` and `runs --tag` filter by it."
            ),
        )(command)

    return decorate


def _register() -> None:
    from harness.cli import compare, data, plugins, runs, scaffold, score

    for module in (data, plugins, runs, scaffold, score, compare):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
