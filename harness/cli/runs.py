"""``harness submit``, ``leaderboard``, ``runs``, ``show`` and ``demo``: thin over
:mod:`harness.runner`, :mod:`harness.board` and :mod:`harness.store.runs`."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli import label_options, pass_context, resampling_options, tag_filter
from harness.cli.output import block, console, echo_json, escape, text
from harness.cli.score import DIALECT_NAMES
from harness.config import DEFAULT_METRIC, MAX_K, SEGMENTS

# Settings for the demo on ml-latest-small: the classic baselines fit in about 11 s together on
# 2 cores. The neural ones, even at 2 epochs, add torch start-up and training (5-30 s each,
# depending on load), so they join only with --neural.
DEMO_BASELINES: list[tuple[str, dict[str, str]]] = [
    ("random", {}),
    ("popular", {}),
    ("personal-popular", {}),
    ("itemknn", {}),
    ("userknn", {}),
    ("ease", {}),
    ("als", {"iterations": "10"}),
    ("bpr", {}),
]
DEMO_NEURAL: list[tuple[str, dict[str, str]]] = [
    ("dssm", {"epochs": "2"}),
    ("sasrec", {"epochs": "2"}),
]


class _Progress:
    """Rich progress of submit stages on stderr: a spinner for the running stage, a line per done one."""

    def __init__(self, quiet: bool) -> None:
        self.console = console(stderr=True)
        self.status = None if quiet else self.console.status("starting…")

    def __enter__(self):
        if self.status:
            self.status.__enter__()
        return self

    def __exit__(self, *exc):
        if self.status:
            self.status.__exit__(*exc)

    def __call__(self, stage: str, state: str, details: dict) -> None:
        if self.status is None:  # quiet
            return
        if state == "start":
            self.status.update(f"{stage}…")
        elif state == "progress":  # the model's own report (epochs, loss, validation, ETA)
            from harness.kit import format_progress

            line = f"{stage}: {format_progress(details)}"  # text from the plugin: escaped
            self.status.update(text(line))
            self.console.print(text(f"  {line}"), style="dim", highlight=False)
        else:
            self.console.print(f"[green]✓[/green] {stage:<10} {details.get('seconds', 0):7.1f} s")


@click.command("submit")
@click.argument("name")
@click.option("--dataset", required=True, help="Prepared dataset name.")
@click.option("--split", default=None, help="Split protocol (default: the dataset's default).")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Recommender parameter (repeatable).",
)
@click.option(
    "--k",
    default=100,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_K),
    help="List length asked for.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Wall-clock limit in seconds for fit + recommend.",
)
@click.option(
    "--memory",
    default=None,
    metavar="SIZE",
    help="Limit on the resident memory (RSS) of the worker and its children, e.g. 2G, 512M.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@label_options()
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="auto: run the model in the bubblewrap sandbox (no network, no view of the store or your home); none: no isolation, for debugging (the run is marked unsandboxed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the stored run as JSON.")
@pass_context
def submit_command(
    ctx, name, dataset, split, params, k, timeout, memory, seed, tags, note, sandbox, as_json
):
    """Fit recommender NAME on the training part, score its top-k lists, store the run."""
    from harness.board import build, describe_standing, standing
    from harness.plugins import parse_params
    from harness.runner import parse_size, submit

    home = ctx.home
    ctx.check_dataset(dataset)
    with _Progress(quiet=as_json) as progress:
        run = submit(
            home,
            name,
            dataset=dataset,
            split=split,
            params=parse_params(params),
            k=k,
            timeout=timeout,
            memory=parse_size(memory) if memory else None,
            seed=seed,
            sandbox=sandbox,
            progress=progress,
            tags=list(tags),
            note=note,
        )
    # A run asked for fewer than 10 items has no ndcg@10: place it by ndcg at its own k.
    metric = DEFAULT_METRIC if DEFAULT_METRIC in run.metrics else f"ndcg@{k}"
    board = build(home, dataset, run.split, metric=metric)
    where = standing(board, run.run_id) or {"rank": None, "of": len(board.rows), "rank_band": None}
    if as_json:
        echo_json(
            {
                **run.to_json(),
                "rank": where["rank"],
                "of": where["of"],
                "rank_band": where["rank_band"],
            }
        )
        return
    out = console()
    metric = board.metric
    value = run.metrics.get(metric)
    out.print(
        f"run [bold]{run.run_id}[/bold]: {name} on {dataset}/{run.split} — {metric} = {value:.4f}"
        if value is not None
        else f"run {run.run_id} stored"
    )
    if where["rank"] is not None:
        out.print(f"leaderboard: {describe_standing(where)}")
        # one line, never folded, so that it can be copied: the same home, registry and split
        out.print(text(f"see: {ctx.board_command(dataset, split)}"), soft_wrap=True)
    if run.sandbox == "none":
        out.print(
            "[yellow]note:[/yellow] unsandboxed run (--sandbox none): marked so on every board"
        )
    report = (run.report or {}).get("validation") or {}
    for key in ("users_missing", "short_lists"):
        if report.get(key):
            out.print(f"[yellow]note:[/yellow] {key.replace('_', ' ')}: {report[key]}")


@click.command("leaderboard")
@click.option("--dataset", required=True)
@click.option("--split", default=None)
@click.option("--metric", default=DEFAULT_METRIC, show_default=True)
@click.option("--segment", type=click.Choice(SEGMENTS), default="all", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the export to FILE instead of stdout.",
)
@resampling_options("Bootstrap and randomization resamples for the CIs and rank bands.")
@click.option(
    "--dialect",
    type=click.Choice(DIALECT_NAMES),
    default="harness",
    show_default=True,
    help="Re-score the stored lists with another library's metric definitions (docs/metrics.md, Dialects).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--best-per-model", is_flag=True, help="Only each recommender's best run.")
@tag_filter
@click.option(
    "--columns",
    default=None,
    metavar="A,B,...",
    help="Table columns to show, e.g. rank,band,run,recommender,params,ndcg@10,vs-best,fit,"
    "recommend,date (default: as many as the terminal width allows).",
)
@pass_context
def leaderboard_command(
    ctx,
    dataset,
    split,
    metric,
    segment,
    fmt,
    out,
    resamples,
    seed,
    dialect,
    as_json,
    best_per_model,
    tags,
    columns,
):
    """Rank the runs on a prepared split (only runs scored on its current fingerprint), with a
    95% CI of the main metric and the band of ranks each run may hold."""
    from harness.board import build

    board = build(
        ctx.home,
        ctx.check_dataset(dataset),
        split,
        metric=metric,
        segment=segment,
        resamples=resamples,
        seed=seed,
        dialect=dialect,
        best_per_model=best_per_model,
        tags=list(tags),
    )
    chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    for notice in board.notices:
        console(stderr=True).print(f"[dim]{escape(notice)}[/dim]")
    if as_json:
        fmt = "json"
    if fmt == "table":
        from harness.board.render import rich_table

        if out:
            from rich.console import Console

            with open(out, "w") as fh:
                Console(file=fh, width=200).print(rich_table(board, columns=chosen))
        elif not board.rows and board.tagged:
            click.echo(
                f"no runs tagged {', '.join(board.tagged)} on {dataset}/{board.split} "
                "(see `harness runs`)"
            )
        elif not board.rows:
            click.echo(
                f"no runs yet on {dataset}/{board.split} (try `harness submit popular --dataset {dataset}`)"
            )
        else:
            term = console()
            term.print(rich_table(board, width=term.width, columns=chosen))
        return
    from harness.board.export import export

    text = export(board, fmt)
    if out:
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)


@click.command("runs")
@click.option("--dataset", default=None)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show at most N runs.")
@tag_filter
@click.option("--json", "as_json", is_flag=True)
@pass_context
def runs_command(ctx, dataset, limit, tags, as_json):
    """List runs, newest first, with their status, tags and note."""
    from harness.labels import check_tags
    from harness.store.runs import list_runs

    runs = list_runs(
        ctx.home, ctx.check_dataset(dataset) if dataset else None, limit, check_tags(tags)
    )
    if as_json:
        echo_json([r.to_json() for r in runs])
        return
    from rich.table import Table

    out = console()
    has_tags, has_note = any(r.tags for r in runs), any(r.note for r in runs)
    wide = out.width >= (150 if has_tags or has_note else 110)
    # narrow: the dataset/split column gives way to the tags, and note and error share a column
    # (a failed run shows its error, `show` prints both)
    place = wide or not (has_tags or has_note)
    notes = ["run ids start with their start time"] if not wide else []
    if not place:
        notes.append("dataset/split left out for width (--json, or a wider terminal)")
    t = Table(title="runs", caption="; ".join(notes) or None)
    # the run id is the handle `show` and `rm` need: never wrapped; other cells are cut with "…"
    t.add_column("run", no_wrap=True, min_width=22)
    t.add_column("recommender", no_wrap=True, overflow="ellipsis", max_width=22 if wide else 14)
    if place:
        t.add_column(
            "dataset/split", no_wrap=True, overflow="ellipsis", max_width=28 if wide else 16
        )
    t.add_column("status", no_wrap=True, min_width=7)
    if wide:
        t.add_column("started", no_wrap=True)
        t.add_column("fit s", no_wrap=True, justify="right")
    if has_tags:
        longest = max(len(", ".join(r.tags)) for r in runs)
        t.add_column("tags", no_wrap=True, overflow="ellipsis", min_width=min(longest, 10))
    if has_note and wide:
        t.add_column("note", no_wrap=True, overflow="ellipsis", ratio=1)
    t.add_column(
        "note / error" if has_note and not wide else "error",
        overflow="ellipsis",
        no_wrap=True,
        ratio=1,
    )
    colours = {"ok": "green", "failed": "red", "aborted": "yellow", "running": "cyan"}
    for r in runs:
        started = f"{r.started_at:%Y-%m-%d %H:%M}" if r.started_at else ""
        fit = f"{r.fit_seconds:.1f}" if r.fit_seconds is not None else ""
        last = r.error or ("" if wide else r.note) or ""
        t.add_row(
            r.run_id,
            text(r.recommender + _marks(r)),
            *((text(f"{r.dataset}/{r.split}"),) if place else ()),
            f"[{colours[r.status]}]{r.status}[/]",
            *((started, fit) if wide else ()),
            *((text(", ".join(r.tags)),) if has_tags else ()),
            *((text(r.note or ""),) if has_note and wide else ()),
            text(last[:200]),
        )
    out.print(t)


@click.command("show")
@click.argument("run_id")
@click.option(
    "--per-user",
    is_flag=True,
    help="Write the run's per-user metrics to --out: user_id, cold, one column per metric.",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --per-user: a .parquet or .csv file.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_context
def show_command(ctx, run_id, per_user, out_file, as_json):
    """Show one run in full: parameters, environment, timings, every metric per segment, its
    place on the board (rank, band, 95% CI), error. --per-user --out FILE exports per-user values."""
    from harness.board import describe_standing, run_standing
    from harness.errors import ConfigError
    from harness.store.runs import get_run

    if per_user or out_file:
        if not (per_user and out_file):
            raise ConfigError(
                "--per-user and --out go together: harness show RUN --per-user --out FILE"
            )
        from harness.board.compare import export_per_user

        rows = export_per_user(ctx.home, run_id, Path(out_file))
        click.echo(f"wrote {rows:,} users to {out_file}", err=True)
        return
    run = get_run(ctx.home, run_id)
    where = run_standing(ctx.home, run)
    if as_json:
        echo_json({**run.to_json(), "board": where})
        return
    from rich.table import Table

    out = console()
    skip = {"metrics", "segments", "report", "stderr_tail", "user_metric_names"}
    info = Table(show_header=False, title=f"run {run.run_id}")
    info.add_column(style="bold")
    info.add_column(overflow="fold")
    for key, value in run.to_json().items():
        if key not in skip and value is not None and value != []:
            info.add_row(key, text(_field(key, value)))
    out.print(info)
    if run.segments:
        segs = sorted(
            run.segments, key=lambda s: SEGMENTS.index(s) if s in SEGMENTS else len(SEGMENTS)
        )
        t = Table(title="metrics")
        t.add_column("metric")
        for seg in segs:
            t.add_column(seg, justify="right")
        names = sorted(
            {m for s in segs for m in run.segments[s]},
            key=lambda m: (
                m.split("@")[0],
                int(m.split("@")[1]) if "@" in m and m.split("@")[1].isdigit() else 0,
            ),
        )
        for m in names:
            t.add_row(m, *(_cell(run.segments[s].get(m)) for s in segs))
        out.print(t)
    if where:
        out.print(f"board: {describe_standing(where)}")
    if run.report:
        checked = run.report.get("validation") or {}
        if checked:
            out.print(
                "validation: "
                + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in checked.items())
            )
        for note in run.report.get("notices") or []:
            out.print("[yellow]notice:[/yellow]", text(note))
    if run.stderr_tail:
        out.print("[bold]stderr (tail):[/bold]")
        out.print(block(run.stderr_tail), highlight=False)


def _marks(run) -> str:
    """What a name carries on every listing: external lists, runs outside the sandbox."""
    return (" (external)" if run.external else "") + (
        " (unsandboxed)" if run.sandbox == "none" else ""
    )


def _cell(v) -> str:
    return "" if v is None else f"{v:.4f}"


def _field(key: str, value) -> str:
    """A run field for people: seconds to 0.01, memory in MiB, times to the second."""
    if key.endswith("_seconds") and isinstance(value, float):
        return f"{value:.2f} s"
    if key.endswith("_bytes") and isinstance(value, int):
        return f"{value / (1 << 20):,.0f} MiB"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if key == "parameters":
        return " ".join(f"{k}={v}" for k, v in sorted(value.items())) or "(defaults)"
    if key == "tags":
        return ", ".join(value)
    if key == "sandbox" and value == "none":
        return "none (unsandboxed: the model ran without isolation)"
    return str(value)


@click.command("demo")
@click.option("--dataset", default="ml-latest-small", show_default=True)
@click.option("--only", default=None, help="Comma-separated subset of the demo baselines.")
@click.option(
    "--neural",
    is_flag=True,
    help="Also submit dssm and sasrec with 2 epochs (5-30 s each on 2 cores).",
)
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="As for submit.",
)
@pass_context
def demo_command(ctx, dataset, only, neural, sandbox):
    """Prepare the embedded dataset, submit every baseline with fast settings, print the leaderboard."""
    from harness.board import build
    from harness.board.render import rich_table
    from harness.datasets import prepare
    from harness.errors import HarnessError
    from harness.plugins import entry_points
    from harness.runner import submit
    from harness.runner.sandbox import SandboxError

    home = ctx.home
    out = console()
    out.print(f"preparing [bold]{dataset}[/bold]…")
    prepare(dataset, home=home, registry_file=ctx.datasets_file)
    known = {ep.name for ep in entry_points()}
    chosen = set(only.split(",")) if only else None
    for name, params in DEMO_BASELINES + (DEMO_NEURAL if neural else []):
        if name not in known or (chosen and name not in chosen):
            continue
        with out.status(f"{name}…"):
            try:
                run = submit(
                    home, name, dataset=dataset, params=params, k=100, timeout=600, sandbox=sandbox
                )
            except SandboxError:
                raise  # the same for every model: one error line
            except HarnessError as exc:
                out.print(f"[red]✗[/red] {name}: {exc}")
                continue
        value = run.metrics.get(DEFAULT_METRIC, float("nan"))
        out.print(
            f"[green]✓[/green] {name:<18} {DEFAULT_METRIC} {value:.4f}"
            f"   fit {run.fit_seconds or 0:.1f} s"
        )
    out.print(rich_table(build(home, dataset), width=out.width))


@click.command("tag", context_settings={"ignore_unknown_options": True})
@click.argument("run_id", metavar="RUN")
@click.argument("changes", nargs=-1, type=click.UNPROCESSED, metavar="[+TAG|-TAG]...")
@click.option(
    "--note", default=None, metavar="TEXT", help="Replace the run's note ('' removes it)."
)
@pass_context
def tag_command(ctx, run_id, changes, note):
    """Add (+TAG, or TAG) and remove (-TAG) tags of a stored run; --note replaces its note.
    RUN: a full id, a unique prefix, or the short id the board shows."""
    from harness.errors import UsageError
    from harness.labels import check_note, check_tags
    from harness.store.runs import retag

    if not changes and note is None:
        raise UsageError("nothing to change: harness tag RUN +TAG -TAG [--note TEXT]")
    add = check_tags([c[1:] if c.startswith("+") else c for c in changes if c[:1] != "-"])
    remove = check_tags([c[1:] for c in changes if c[:1] == "-"])
    run = retag(
        ctx.home,
        run_id,
        add,
        remove,
        note=check_note(note) if note is not None else None,
        set_note=note is not None,
    )
    click.echo(
        escape(
            f"run {run.run_id}: tags {', '.join(run.tags) or '(none)'}"
            + (f"; note: {run.note}" if run.note else "")
        )
    )


@click.command("rm")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN...")
@pass_context
def rm_command(ctx, run_ids):
    """Remove runs (a full id, a unique prefix, or the short id the board shows): the run, its
    metrics, per-user values and lists. A running run is refused."""
    from harness.store.runs import delete_run

    for run_id in run_ids:
        run = delete_run(ctx.home, run_id)
        click.echo(
            f"removed run {run.run_id} ({run.recommender} on {run.dataset}/{run.split}, "
            f"{run.status})"
        )


COMMANDS = [
    submit_command,
    leaderboard_command,
    runs_command,
    show_command,
    demo_command,
    rm_command,
    tag_command,
]
