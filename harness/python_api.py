"""The Python API: what the command line does, callable from a notebook or a script.

Every call here is the library call behind a ``harness`` command (the CLI only parses options and
renders), so the two give identical numbers for the same run. Results are small objects that
render in Jupyter (``_repr_html_``) and convert with ``.to_polars()`` / ``.to_pandas()``.

    import harness
    ds = harness.prepare("ml-latest-small")
    run = harness.submit(MyModel(factors=32), dataset="ml-latest-small")
    harness.leaderboard("ml-latest-small")
    harness.compare(run, "popular")
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from harness.config import resolve_home
from harness.errors import ConfigError
from harness.frames import to_polars

if TYPE_CHECKING:
    from harness.api import TrainData
    from harness.board import Board
    from harness.store.runs import Run as StoredRun

PathLike = str | os.PathLike[str]

__all__ = [
    "Comparison",
    "Dataset",
    "Leaderboard",
    "Run",
    "Scores",
    "compare",
    "leaderboard",
    "prepare",
    "runs",
    "score",
    "submit",
]


# -- rendering helpers -------------------------------------------------------------------------

_STYLE = (
    "<style>.harness-r td,.harness-r th{padding:2px 8px;text-align:right}"
    ".harness-r td:first-child,.harness-r th:first-child{text-align:left}</style>"
)


def _html_table(frame: pl.DataFrame, caption: str = "", digits: int = 4) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.iter_rows()
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'{_STYLE}<table class="harness-r">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _to_pandas(frame: pl.DataFrame) -> Any:
    try:
        import pandas  # noqa: F401
    except ImportError as exc:
        raise ConfigError("to_pandas() needs pandas: pip install pandas") from exc
    return frame.to_pandas()


def _tidy(segments: dict[str, dict[str, float]]) -> pl.DataFrame:
    """``{segment: {"name@k": value}}`` as rows of (metric, k, segment, value), metrics in the
    registry's order (precision, recall, map, ndcg, ...) and k ascending."""
    from harness.metrics import REGISTRY

    order = {name: i for i, name in enumerate(REGISTRY.names())}
    rows = [
        (m.split("@")[0], int(m.split("@")[1]), s, float(v))
        for s, values in segments.items()
        for m, v in values.items()
        if "@" in m
    ]
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))
    return pl.DataFrame(
        rows,
        schema={"metric": pl.Utf8, "k": pl.Int64, "segment": pl.Utf8, "value": pl.Float64},
        orient="row",
    )


def _grid(metrics: pl.DataFrame, segment: str = "all") -> pl.DataFrame:
    """One segment's values as a metric x k table: what a person reads first."""
    part = metrics.filter(pl.col("segment") == segment)
    if part.is_empty():
        return pl.DataFrame({"metric": []}, schema={"metric": pl.Utf8})
    ks = sorted(set(part.get_column("k").to_list()))
    grid = part.pivot(
        on="k", index="metric", values="value", maintain_order=True, sort_columns=True
    )
    return grid.select("metric", *[pl.col(str(k)).alias(f"@{k}") for k in ks])


def _segments_note(metrics: pl.DataFrame) -> str:
    others = [
        s for s in metrics.get_column("segment").unique(maintain_order=True).to_list() if s != "all"
    ]
    return f" (segment all; also {', '.join(others)}: .metrics)" if others else ""


# -- datasets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A prepared split: its metadata and its training part (never the truth)."""

    name: str
    split: str
    fingerprint: str
    info: dict[str, Any]
    home: Path

    def train(self) -> pl.DataFrame:
        """The training interactions, exactly as a submitted model receives them."""
        from harness.store.splits import load_split

        return load_split(self.home, self.name, self.split, parts=("train",)).part("train")

    def train_data(self) -> TrainData:
        """The :class:`harness.api.TrainData` a model's ``fit`` gets (train, features, cutoff)."""
        from harness.api import TrainData
        from harness.store.splits import load_split

        split = load_split(self.home, self.name, self.split, parts=("train", "users", "items"))
        return TrainData(
            split.part("train"), users=split.users, items=split.items, cutoff=split.cutoff
        )

    def test_users(self) -> pl.DataFrame:
        """The users a model is asked to recommend for, with their ``cold`` flag."""
        from harness.store.splits import load_split

        return load_split(self.home, self.name, self.split, parts=("test_users",)).part(
            "test_users"
        )

    def _repr_html_(self) -> str:
        keys = (
            "users",
            "items",
            "interactions",
            "train_rows",
            "test_users",
            "warm_users",
            "cold_users",
            "truth_rows",
        )
        frame = pl.DataFrame({"": list(keys), "value": [str(self.info.get(k, "")) for k in keys]})
        return _html_table(frame, f"{self.name} / {self.split}")

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, split={self.split!r}, test_users="
            f"{self.info.get('test_users')}, train_rows={self.info.get('train_rows')})"
        )


def prepare(
    dataset: str = "ml-latest-small",
    split: str | None = None,
    *,
    force: bool = False,
    home: PathLike | None = None,
    datasets: PathLike | None = None,
) -> Dataset:
    """Prepare ``dataset`` (a name from the registry) like ``harness data prepare``; return it.

    Nothing is done when the split is already prepared with the same fingerprint."""
    from harness import datasets as ds

    root = resolve_home(home)
    meta = ds.prepare(
        dataset,
        home=root,
        split=split,
        force=force,
        registry_file=Path(datasets) if datasets else None,
    )
    return Dataset(meta["dataset"], meta["split"], meta["fingerprint"], dict(meta["info"]), root)


# -- scoring -----------------------------------------------------------------------------------


@dataclass
class Scores:
    """Metric values of one set of lists: ``metrics`` is tidy (metric, k, segment, value)."""

    metrics: pl.DataFrame
    per_user: pl.DataFrame
    notices: list[str] = field(default_factory=list)

    def __getitem__(self, metric: str) -> float:
        """``scores["ndcg@10"]``: the value over all users."""
        name, _, k = metric.partition("@")
        hit = self.metrics.filter(
            (pl.col("metric") == name) & (pl.col("k") == int(k or 0)) & (pl.col("segment") == "all")
        )
        if hit.is_empty():
            raise KeyError(metric)
        return float(hit.item(0, "value"))

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{segment: {"name@k": value}}`` (the ``segments`` of ``--json``)."""
        out: dict[str, dict[str, float]] = {}
        for m, k, s, v in self.metrics.iter_rows():
            out.setdefault(s, {})[f"{m}@{k}"] = v
        return out

    def to_polars(self) -> pl.DataFrame:
        return self.metrics

    def to_pandas(self) -> Any:
        return _to_pandas(self.metrics)

    def _repr_html_(self) -> str:
        notes = "".join(f"<p><em>{html.escape(n)}</em></p>" for n in self.notices)
        return (
            _html_table(_grid(self.metrics), "metric at k" + _segments_note(self.metrics)) + notes
        )

    def __repr__(self) -> str:
        return f"Scores{_segments_note(self.metrics)}\n{_grid(self.metrics)}"


def score(
    recs: Any,
    truth: Any,
    k: int | Sequence[int] = (10,),
    *,
    catalog: Any = None,
    item_categories: Any = None,
    dialect: str = "harness",
) -> Scores:
    """Score lists against a truth, like ``harness score``.

    ``recs``: user_id, item_id and score (higher first) or rank; ``truth``: user_id, item_id;
    polars or pandas frames, or paths of parquet/CSV files. ``catalog`` (train interactions:
    item_id[, user_id]) adds coverage, gini, novelty and warm/cold segments; ``item_categories``
    (item_id, categories) adds diversity. The same validation as the command applies: a duplicate
    item, a null id, a NaN score or ids that cannot match are errors, never a silent score."""
    from harness.scoring import score_files

    ks = (k,) if isinstance(k, int) else tuple(k)
    inputs = {
        name: _frame_or_path(value, name, required)
        for name, value, required in (
            ("recs", recs, ("user_id", "item_id")),
            ("truth", truth, ("user_id", "item_id")),
            ("catalog", catalog, ("item_id",)),
            ("item_categories", item_categories, ("item_id", "categories")),
        )
        if value is not None
    }
    scored = score_files(
        inputs["recs"],
        inputs["truth"],
        ks=ks,
        catalog=inputs.get("catalog"),
        categories=inputs.get("item_categories"),
        dialect=dialect,
    )
    evaluation = scored.evaluation
    return Scores(_tidy(evaluation.metrics), evaluation.per_user, list(evaluation.notices))


def _frame_or_path(value: Any, name: str, required: tuple[str, ...]) -> Path | pl.DataFrame:
    """A path stays a path (read, and named in messages, as the command does); a frame is
    converted (pandas) and checked for its columns."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    return to_polars(value, name=name, required=required)


# -- runs, the board, comparisons -----------------------------------------------------------------


@dataclass
class Run:
    """A stored run: ``record`` its stored fields; ``metrics`` tidy (metric, k, segment, value)."""

    record: StoredRun
    metrics: pl.DataFrame
    standing: dict[str, Any] | None = None  # rank, of, rank_band, metric, value, ci on its board

    @property
    def ci(self) -> list[float] | None:
        """95% bootstrap CI of the board's main metric for this run."""
        return (self.standing or {}).get("ci")

    @property
    def rank_band(self) -> list[int] | None:
        """[1 + runs significantly better, N - runs significantly worse] on the run's board."""
        return (self.standing or {}).get("rank_band")

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def status(self) -> str:
        return self.record.status

    def __getitem__(self, metric: str) -> float:
        """``run["ndcg@10"]``: the value over all users."""
        return Scores(self.metrics, pl.DataFrame())[metric]

    def per_user(self, home: PathLike | None = None) -> pl.DataFrame:
        """One row per truth user of the run: user_id, segment and one column per ``name@k``."""
        from harness.store.runs import user_metrics

        return user_metrics(resolve_home(home), self.run_id)

    def to_polars(self) -> pl.DataFrame:
        return self.metrics

    def to_pandas(self) -> Any:
        return _to_pandas(self.metrics)

    def _repr_html_(self) -> str:
        r = self.record
        title = f"run {r.run_id}: {r.recommender} on {r.dataset}/{r.split}: {r.status}"
        if r.error:
            title += f" ({r.error})"
        if self.standing:
            from harness.board import describe_standing

            title += f"; {describe_standing(self.standing)}"
        return _html_table(_grid(self.metrics), title + _segments_note(self.metrics))

    def __repr__(self) -> str:
        r = self.record
        return f"Run({r.run_id!r}, {r.recommender!r}, status={r.status!r})"


def _run(record: StoredRun, home: Path | None = None) -> Run:
    """The API's view of a stored run; with ``home``, also its standing on its board."""
    from harness.board import run_standing

    return Run(record, _tidy(record.segments), run_standing(home, record) if home else None)


def runs(
    dataset: str | None = None,
    *,
    limit: int | None = None,
    tags: str | list[str] | None = None,
    home: PathLike | None = None,
) -> pl.DataFrame:
    """Stored runs, newest first, like ``harness runs``; ``tags``: only runs carrying all of them."""
    from harness.labels import check_tags
    from harness.store.runs import list_runs

    keep = (
        "run_id",
        "recommender",
        "dataset",
        "split",
        "status",
        "k",
        "started_at",
        "error",
        "tags",
        "note",
    )
    found = list_runs(resolve_home(home), dataset=dataset, limit=limit, tags=check_tags(tags))
    rows = [{key: getattr(r, key) for key in keep} for r in found]
    return pl.DataFrame(
        rows,
        schema_overrides={
            "error": pl.Utf8,
            "k": pl.Int64,
            "tags": pl.List(pl.Utf8),
            "note": pl.Utf8,
        },
    )


@dataclass
class Leaderboard:
    """The ranked board of a prepared split, like ``harness leaderboard``."""

    board: Board

    def to_polars(self) -> pl.DataFrame:
        """One row per run: rank, rank band, the board's metric columns (numbers), the main
        metric's CI, and what identifies the run."""
        b = self.board
        rows = [
            {
                "rank": r.rank,
                "band_lo": (r.rank_band or (None, None))[0],
                "band_hi": (r.rank_band or (None, None))[1],
                "recommender": r.recommender,
                "params": r.params,
                **{c: r.metrics.get(c) for c in b.columns},
                "ci_lo": ((r.ci or {}).get(b.metric) or (None, None))[0],
                "ci_hi": ((r.ci or {}).get(b.metric) or (None, None))[1],
                "vs_best_baseline": r.vs_best_baseline,
                "baseline": r.baseline,
                "sandbox": r.sandbox,
                "run_id": r.run_id,
                "date": r.date,
                "tags": r.tags,
                "note": r.note,
            }
            for r in b.rows
        ]
        numbers = {c: pl.Float64 for c in (*b.columns, "ci_lo", "ci_hi", "vs_best_baseline")}
        return pl.DataFrame(
            rows, schema_overrides={**numbers, "tags": pl.List(pl.Utf8), "note": pl.Utf8}
        )

    def to_pandas(self) -> Any:
        return _to_pandas(self.to_polars())

    def to_dict(self) -> dict[str, Any]:
        return self.board.to_json()

    def _repr_html_(self) -> str:
        """The HTML export (table, CIs, bands, charts) in an iframe, so that its stylesheet
        styles the board and not the notebook around it."""
        from harness.board import export

        height = 160 + 30 * len(self.board.rows) + (440 if self.board.rows else 0)
        return (
            f'<iframe srcdoc="{html.escape(export.to_html(self.board))}" '
            f'style="width:100%;height:{height}px;border:0"></iframe>'
        )

    def __repr__(self) -> str:
        return (
            f"Leaderboard({self.board.dataset!r}, {len(self.board.rows)} runs)\n{self.to_polars()}"
        )


def leaderboard(
    dataset: str = "ml-latest-small",
    *,
    split: str | None = None,
    metric: str = "ndcg@10",
    segment: str = "all",
    tags: str | list[str] | None = None,
    home: PathLike | None = None,
) -> Leaderboard:
    """The board of ``dataset`` ranked by ``metric`` in ``segment``; ``tags``: only the runs
    carrying all of them (``harness leaderboard --tag``)."""
    from harness.board import build
    from harness.labels import check_tags

    return Leaderboard(
        build(
            resolve_home(home),
            dataset,
            split,
            metric=metric,
            segment=segment,
            tags=check_tags(tags),
        )
    )


def _run_id(run: Run | str) -> str:
    return run.run_id if isinstance(run, Run) else str(run)


@dataclass
class Comparison:
    """Two runs compared user by user (``harness compare``)."""

    result: dict[str, Any]

    def to_polars(self) -> pl.DataFrame:
        rows = [
            {
                "metric": m,
                "a": v["a"],
                "b": v["b"],
                "delta": v["delta"],
                "ci_low": v["ci"][0],
                "ci_high": v["ci"][1],
                "p_value": v["p_value"],
                "wins": v["wins"],
                "ties": v["ties"],
                "losses": v["losses"],
            }
            for m, v in self.result["metrics"].items()
        ]
        return pl.DataFrame(rows)

    def to_pandas(self) -> Any:
        return _to_pandas(self.to_polars())

    @property
    def changed(self) -> pl.DataFrame:
        """The users whose hit@k changed between the runs: user_id, change."""
        return self.result["changed"]

    def _repr_html_(self) -> str:
        a, b = self.result["a"], self.result["b"]
        overlap = ", ".join(f"{k} {v:.3f}" for k, v in self.result.get("overlap", {}).items())
        title = (
            f"A = {a['recommender']} ({a['run_id']}) vs B = {b['recommender']} "
            f"({b['run_id']}), delta = A - B, 95% paired CI; list overlap: {overlap}"
        )
        return _html_table(self.to_polars(), title)

    def __repr__(self) -> str:
        return f"Comparison(\n{self.to_polars()}\n)"


def compare(
    a: Run | str,
    b: Run | str,
    *,
    metric: str | None = None,
    segment: str = "all",
    home: PathLike | None = None,
) -> Comparison:
    """Compare two runs of the same split user by user (paired CIs, p-values, overlap)."""
    from harness.board.compare import compare as compare_runs

    return Comparison(
        compare_runs(resolve_home(home), _run_id(a), _run_id(b), metric=metric, segment=segment)
    )


# -- submitting ----------------------------------------------------------------------------------


def submit(
    model: Any,
    dataset: str = "ml-latest-small",
    *,
    split: str | None = None,
    params: dict[str, Any] | None = None,
    k: int = 100,
    timeout: float | None = None,
    memory: int | str | None = None,
    seed: int = 0,
    sandbox: str = "auto",
    name: str | None = None,
    progress: bool = True,
    tags: str | list[str] | None = None,
    note: str | None = None,
    home: PathLike | None = None,
) -> Run:
    """Fit ``model`` on the training part in the sandboxed worker, score and store the run.

    ``model`` is an entry-point name (``"als"``, with ``params`` as ``-p`` would give them), a
    class (built here with ``params``) or an instance defined here, in the notebook. Classes and
    instances are serialised by value (cloudpickle), so a model defined in a cell runs under the
    same sandbox, limits, validation and scoring as a packaged plugin. ``memory``: bytes or a
    size such as ``"2G"``. ``tags`` and ``note`` are stored with the run, as ``--tag`` and
    ``--note`` (a malformed one raises UsageError before anything runs). Returns the stored run;
    a failed run raises :class:`RunError`."""
    from harness.labels import check_note, check_tags
    from harness.runner import parse_size

    tags, note = check_tags(tags), check_note(note)
    from harness.runner import submit as run_submit

    limit = parse_size(memory) if isinstance(memory, str) else memory
    if isinstance(model, str):
        label, pickled = model, None
        shown = {key: str(value) for key, value in (params or {}).items()}
    else:
        instance = _instantiate(model, params)
        label = name or type(instance).__name__
        pickled = _pickle_model(instance, label)
        shown = {key: str(value) for key, value in (params or _public_params(instance)).items()}
    root = resolve_home(home)
    record = run_submit(
        root,
        label,
        dataset=dataset,
        split=split,
        params=shown,
        k=k,
        timeout=timeout,
        memory=limit,
        seed=seed,
        sandbox=sandbox,
        progress=_printer() if progress else None,
        pickled=pickled,
        tags=tags,
        note=note,
    )
    return _run(record, root)


def _instantiate(model: Any, params: dict[str, Any] | None) -> Any:
    if isinstance(model, type):
        from harness.plugins import _signature_params, check_bounds

        declared = {p.name: p for p in _signature_params(model)}
        for key, value in (params or {}).items():
            if key in declared:  # the same check as -p (UsageError naming the bound)
                check_bounds(model.__name__, declared[key], value)
        try:
            model = model(**(params or {}))
        except TypeError as exc:
            raise ConfigError(f"{model.__name__}: {exc}") from exc
    elif params:
        raise ConfigError("params go with a class or an entry-point name, not with an instance")
    for method in ("fit", "recommend"):
        if not callable(getattr(model, method, None)):
            raise ConfigError(
                f"{type(model).__name__} has no {method}() method: a model needs "
                "fit(data) and recommend(users, k) (see harness.api.Recommender)"
            )
    return model


def _public_params(instance: Any) -> dict[str, Any]:
    """Constructor arguments the instance keeps as plain attributes: the board's params column."""
    import inspect

    try:
        names = list(inspect.signature(type(instance)).parameters)
    except (TypeError, ValueError):
        return {}
    values = {n: getattr(instance, n, None) for n in names}
    return {n: v for n, v in values.items() if isinstance(v, (bool, int, float, str))}


def _pickle_model(instance: Any, label: str) -> bytes:
    """The instance serialised by value, or a one-line error naming what cannot travel."""
    import sys
    from importlib.metadata import packages_distributions

    import cloudpickle

    _check_devices(instance, label)
    installed = packages_distributions()
    module = sys.modules.get(type(instance).__module__)
    # a class from an installed package travels by reference (the worker imports it); one from
    # a local file or a notebook travels by value, since the sandbox sees no such file
    local = (
        module is not None
        and module.__name__ != "__main__"
        and module.__name__.split(".")[0] not in installed
    )
    if local:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(instance)
    except Exception as exc:
        raise ConfigError(
            f"model {label} cannot be serialised for the worker: "
            f"{_culprit(instance, cloudpickle)}{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if local:
            cloudpickle.unregister_pickle_by_value(module)


def _culprit(instance: Any, cloudpickle: Any) -> str:
    for attr, value in vars(instance).items() if hasattr(instance, "__dict__") else ():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return f"attribute {attr!r} ({type(value).__name__}): "
    return ""


def _check_devices(instance: Any, label: str) -> None:
    """Tensors on a GPU would not load in a CPU-only worker: ask for them on the CPU."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not hasattr(instance, "__dict__"):
        return
    for attr, value in vars(instance).items():
        if isinstance(value, torch.nn.Module):
            tensors = [*value.parameters(), *value.buffers()]
        elif isinstance(value, torch.Tensor):
            tensors = [value]
        else:
            continue
        device = next((t.device for t in tensors if t.device.type != "cpu"), None)
        if device is not None:
            raise ConfigError(
                f"model {label}: attribute {attr!r} holds tensors on {device}; "
                "move them to the CPU (.cpu()) before submitting, or build them in fit()"
            )


def _printer():
    """Stage lines and the model's own progress, on stderr; the same in Jupyter and a terminal
    (plain lines, no live spinner, which Jupyter would need ipywidgets for)."""
    from rich.console import Console

    out = Console(stderr=True, highlight=False)

    def progress(stage: str, state: str, details: dict) -> None:
        from rich.markup import escape

        from harness.api import format_progress

        if state == "progress":
            out.print(f"  [dim]{escape(stage)}: {escape(format_progress(details))}[/dim]")
        elif state == "done":
            out.print(f"[green]✓[/green] {stage:<10} {details.get('seconds', 0):7.1f} s")

    return progress
