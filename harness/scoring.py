"""One scoring path for every command that scores lists: read -> validate -> score -> store.

``harness score --truth`` (:func:`score_files`), ``harness score --dataset`` (:func:`score_external`)
and ``harness submit`` (the runner) all call :func:`score_lists`, and the two that keep a run call
:func:`store_run`. The metric maths lives in :mod:`harness.metrics`, the storage SQL in
:mod:`harness.store`; commands only parse and print.

The local engine reads, validates and scores the lists a chunk of whole users at a time
(:class:`harness.recs.ListReader`, :class:`harness.metrics.Scorer`), so memory holds the truth (in
the compact form of :class:`harness.metrics.Truth`), a few values per truth user, and one chunk,
however long the list file is. Other engines
(``engine="spark"``) live in :mod:`harness.engines` and take the same arguments."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from harness.api import Columns
from harness.errors import ConfigError, DataError
from harness.metrics import DEFAULT_KS, Evaluation, Scorer, Truth, align_catalogue
from harness.recs import CHUNK_ROWS, ListReader, NotGrouped, read_table, validate_truth

if TYPE_CHECKING:
    from harness.engines.spark import SparkEvaluation
    from harness.store.runs import Run

USER, ITEM = Columns.USER, Columns.ITEM
ENGINES = ("local", "spark")


@dataclass
class Scored:
    """The evaluation and the validation report of one list file (rows, users with lists, ...)."""

    evaluation: Evaluation | SparkEvaluation
    report: dict


Table = Path | pl.DataFrame  # a file (parquet or CSV) or a frame already in memory (Python API)


def _table(source: Table) -> pl.DataFrame:
    return source if isinstance(source, pl.DataFrame) else read_table(Path(source))


def _label(source: Table, frame_name: str) -> str:
    """How messages name an input: its path, or the argument name of a frame."""
    return frame_name if isinstance(source, pl.DataFrame) else str(source)


def read_catalog(path: Table) -> pl.DataFrame:
    """Train interactions or items (``item_id[, user_id]``) for coverage, gini, novelty, cold."""
    train = _table(path)
    if ITEM not in train.columns:
        raise ConfigError(
            f"{_label(path, 'catalog')}: needs an item_id column (and user_id for novelty)"
        )
    return train


def read_categories(path: Table) -> pl.DataFrame:
    """``item_id, categories`` (a list, or ``a|b|c`` in CSV) for diversity."""
    cats = _table(path)
    if "categories" not in cats.columns or ITEM not in cats.columns:
        raise ConfigError(
            f"{_label(path, 'item_categories')}: needs item_id and categories columns"
        )
    if cats.schema["categories"] == pl.Utf8:  # CSV: "a|b|c"
        cats = cats.with_columns(pl.col("categories").str.split("|"))
    return cats


def score_lists(
    lists,
    truth: pl.DataFrame | Truth,
    *,
    ks=DEFAULT_KS,
    train: pl.DataFrame | None = None,
    cold_users: pl.Series | None = None,
    item_categories: pl.DataFrame | None = None,
    users: pl.Series | None = None,
    k: int | None = None,
    name: str | None = None,
    against: str = "the truth",
    write_to: Path | None = None,
    adopt: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    truth_distinct: bool = False,
) -> Scored:
    """Validate and score ``lists`` (a list file, a directory of parquet files or a frame) with the
    local engine. ``users``: the users a list may name; ``k``: the longest list allowed;
    ``write_to``: also write the normalised lists there (parquet, ``user_id, item_id, rank[,
    score]``), chunk by chunk; ``adopt``: ``lists`` is a file the caller gives up: when every row
    of it comes out of validation unchanged (a worker's ``user_id, item_id, score``, each list
    best first), it is moved to ``write_to`` instead of written again; ``truth_distinct``: no
    pair of ``truth`` repeats (checked by :func:`harness.recs.validate_truth`). ``truth`` may be a :class:`~harness.metrics.Truth`:
    a caller that lets go of its frame keeps only that compact form resident.
    Raises ValidationError naming ``name`` and the offending rows."""
    name = name or ("recommendations" if isinstance(lists, pl.DataFrame) else str(lists))
    if not isinstance(truth, Truth):
        truth = Truth.of(truth, distinct=truth_distinct)
    # The reader aligns the lists' ids to the truth's (harness.ids). For integer ids that
    # depends on the types alone, so it gets no pairs; other ids need every value.
    for_reader = truth.empty() if truth.packable else truth.frame()

    # a file given up is moved only if nothing changed it while it was read
    given_up = adopt and write_to is not None and not isinstance(lists, pl.DataFrame)
    before = _identity(lists) if given_up else None

    def run(reader: ListReader, keep: bool) -> Scored:
        scorer = writer = None
        kept = 0  # rows not written: the list file holds them as they are
        # A chunk is scored on a second thread while this one reads and validates the next (the
        # heavy numpy and polars steps release the GIL): one chunk in flight, so memory stays
        # bounded, and chunks are scored one after another, in order, as before.
        pool = ThreadPoolExecutor(1, thread_name_prefix="harness-score")
        scoring: Future | None = None
        try:
            for chunk, starts in reader:
                if scorer is None:  # the truth has the lists' id types once the first batch is in
                    # the alignment casts the truth's columns: the compact truth is cast alike
                    aligned = truth.cast(
                        (reader.truth if reader.truth is not None else for_reader).schema
                    )
                    catalogue, cats = align_catalogue(train, item_categories, aligned.bounds())
                    scorer = Scorer(
                        aligned,
                        ks=ks,
                        train=catalogue,
                        cold_users=cold_users,
                        item_categories=cats,
                        source=name,
                    )
                if scoring is not None:
                    scoring.result()
                # the reader's ranks are places in a list: not checked again
                scoring = pool.submit(partial(scorer.add, placed=True), chunk, starts)
                if keep and reader.verbatim:
                    kept += chunk.height
                elif kept:  # the file stopped being the lists after some chunks: start again
                    raise _WriteAfterAll
                elif write_to is not None:
                    writer = _write(writer, write_to, chunk)
            if scoring is not None:
                scoring.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if writer is not None:
                writer.close()
        if scorer is None:  # a reader yields at least one chunk, empty or not
            raise RuntimeError(f"{name}: no chunk read")
        scored = Scored(scorer.finish(), reader.report)
        if kept and write_to is not None:
            if _identity(lists) != before:
                raise DataError(f"{name}: changed while it was read")
            os.replace(lists, write_to)
        return scored

    reader = partial(ListReader, name=name, k=k, users=users, truth=for_reader, against=against)
    try:
        try:
            return run(reader(lists, chunk_rows=chunk_rows), keep=before is not None)
        except _WriteAfterAll:  # (rare: lists in order up to a point) read and write them all
            return run(reader(lists, chunk_rows=chunk_rows), keep=False)
    except NotGrouped:
        # a user's rows in two places: read the lists whole (memory grows with the file)
        whole = lists if isinstance(lists, pl.DataFrame) else reader(lists).read()
        return run(reader(whole, chunk_rows=max(whole.height, 1)), keep=False)


class _WriteAfterAll(Exception):
    """A list file kept so far (:attr:`harness.recs.ListReader.verbatim`) has a chunk that
    validation changes: the normalised lists are written instead, from the first row."""


def _write(writer, path: Path, chunk: pl.DataFrame):
    """Append a normalised chunk to the parquet file at ``path`` (a new writer for the first).

    LZ4, plain encoding, columns marked required (validation let no null through, so no
    definition levels are encoded) and statistics for ``user_id`` only: 0.26 CPU-s per 10M rows
    of realistic lists and about 0.2 of one popular list for everyone, where dictionaries of item ids
    and ranks with every column's statistics cost 0.49 and 0.41 (files about 14% larger); at 96M
    rows this was the largest cost of the submit path's main thread."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = chunk.to_arrow()
    table = table.cast(pa.schema([field.with_nullable(False) for field in table.schema]))
    if writer is None:
        writer = pq.ParquetWriter(
            path,
            table.schema,
            compression="lz4",
            use_dictionary=False,
            write_statistics=[USER],
        )
    writer.write_table(table)
    return writer


def _identity(path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_size, info.st_mtime_ns


PRELOAD_BYTES = 8 << 20  # list files from this size take the compiled passes (1M rows ~ 10 MB)


def _preload_kernels(recs: Table) -> None:
    """Load numba (and pyarrow's parquet module) on a second thread while the truth is read,
    when the lists are large enough for the compiled passes (:func:`harness.pairs.compiled`):
    the import and first call cost about 1 s, which then overlaps the reading instead of
    following it."""
    if isinstance(recs, pl.DataFrame) or "harness.kernels" in sys.modules:
        return
    path = Path(recs)
    try:
        size = path.stat().st_size if path.is_file() else 0
        if path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*.parquet"))
    except OSError:
        return  # the reader names the problem
    if size >= PRELOAD_BYTES:
        threading.Thread(target=_load_reading, name="harness-numba", daemon=True).start()


def warm_up(rows: int) -> None:
    """For a caller that waits before it scores (``submit``, while the model runs): when lists of
    about ``rows`` rows take the compiled passes (:func:`harness.pairs.compiled`), load on a
    second thread what their first use would load (numba's code generator and the score stage's
    modules, about 1.5 CPU-s)."""
    from harness.pairs import COMPILED_FROM_ROWS

    if COMPILED_FROM_ROWS is not None and rows >= COMPILED_FROM_ROWS:
        threading.Thread(target=_load_scoring, name="harness-warm-up", daemon=True).start()


def _load_scoring() -> None:
    import scipy.sparse  # noqa: F401

    _load_reading()


def _load_reading() -> None:
    import pyarrow.parquet  # noqa: F401 - the list reader reads the file's row groups (0.1 s)

    _load_kernels()


def _load_kernels() -> None:
    import numpy as np

    from harness import kernels

    # the first call of any kernel loads numba's code generator (about 0.7 s)
    kernels.repeated_in_blocks(
        np.zeros(1, np.int64), np.zeros(2, np.int64), 0, np.zeros(1, np.int32), 1
    )


def score_files(
    recs: Table,
    truth: Table,
    *,
    ks=DEFAULT_KS,
    catalog: Table | None = None,
    categories: Table | None = None,
    dialect: str = "harness",
    engine: str = "local",
    **options,
) -> Scored:
    """``harness score --recs --truth`` and ``harness.score``: score a list file (or a directory
    of parquet files, or a frame) against a truth file (or frame); ``catalog`` (train
    interactions or items) and ``categories`` enable the catalogue metrics, novelty and
    diversity. ``engine`` picks the engine (local: this
    machine, in bounded memory; spark: :mod:`harness.engines.spark`); ``dialect`` another
    library's definitions (:mod:`harness.metrics.dialects`, in memory)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r} (one of {', '.join(ENGINES)})")
    if engine != "local":
        module = importlib.import_module(f"harness.engines.{engine}")
        return module.score_files(
            recs, truth, ks=ks, catalog=catalog, categories=categories, dialect=dialect, **options
        )
    if dialect == "harness":
        _preload_kernels(recs)
    recs_name, truth_name = _label(recs, "recs"), _label(truth, "truth")
    if dialect != "harness":
        # a dialect that counts a repeated truth pair twice needs the rows as given
        truth_frame = validate_truth(_table(truth), source=truth_name, keep_repeats=True)
        train = read_catalog(catalog) if catalog else None
        return _score_dialect(
            recs,
            truth_frame,
            ks=ks,
            train=train,
            cold=_no_cold(train, truth_frame.schema[USER]),
            cats=read_categories(categories) if categories else None,
            dialect=dialect,
            recs_name=recs_name,
            truth_name=truth_name,
        )
    # the compact truth only (harness.metrics.Truth): read in batches where the file allows,
    # else validated whole and the frame (a user id per pair) let go before the scoring
    truth_pairs = None if isinstance(truth, pl.DataFrame) else Truth.read(truth)
    if truth_pairs is None:
        truth_frame = validate_truth(_table(truth), source=truth_name)
        truth_pairs = Truth.of(truth_frame, distinct=True)  # validate_truth collapsed repeats
        del truth_frame
    train = read_catalog(catalog) if catalog else None
    return score_lists(
        recs,
        truth_pairs,
        ks=ks,
        train=train,
        cold_users=_no_cold(train, truth_pairs.users.dtype),
        item_categories=read_categories(categories) if categories else None,
        name=recs_name,
        against=truth_name,
        **options,
    )


def _no_cold(train: pl.DataFrame | None, dtype) -> pl.Series | None:
    """A catalogue of items only says nothing about who is cold: every truth user is warm."""
    return pl.Series([], dtype=dtype) if train is not None and USER not in train.columns else None


def _score_dialect(
    recs: Table,
    truth: pl.DataFrame,
    *,
    ks,
    train,
    cold,
    cats,
    dialect: str,
    recs_name: str,
    truth_name: str,
) -> Scored:
    """Another library's definitions: lists of users outside the truth matter to some, so the
    whole file is validated and scored in memory (:func:`harness.metrics.evaluate`)."""
    from harness.metrics import evaluate

    lists, truth, report = dialect_lists(
        recs, truth, dialect=dialect, recs_name=recs_name, truth_name=truth_name
    )
    return Scored(
        evaluate(
            lists,
            truth,
            ks=ks,
            train=train,
            cold_users=cold,
            item_categories=cats,
            source=recs_name,
            dialect=dialect,
        ),
        report,
    )


def dialect_lists(
    recs: Table, truth: pl.DataFrame, *, dialect: str, recs_name: str, truth_name: str
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """The whole list file validated for scoring in ``dialect``, the truth with aligned ids, and
    the validation report. A dialect that sorts each list from its order in the file (ranx) gets
    each row's input position too (column ``input_row``)."""
    from harness.ids import align_ids, normalise_ids
    from harness.metrics.dialects import INPUT_ROW
    from harness.metrics.dialects import get as get_dialect
    from harness.recs import validate_recommendations

    raw = ListReader(recs).read()
    if USER in raw.columns and ITEM in raw.columns and raw.height:
        # aligned before validation, so that a message names the row of the input file
        raw, truth = align_ids(raw, truth, source=recs_name, against=truth_name)
    lists, report = validate_recommendations(raw, source=recs_name)
    if get_dialect(dialect).ties == "numba":
        rows = normalise_ids(raw.select(USER, ITEM), source=recs_name).with_row_index(INPUT_ROW)
        lists = lists.join(rows, on=[USER, ITEM], how="left", maintain_order="left")
    return lists, truth, report


def store_run(
    home: Path,
    run_id: str,
    scored: Scored,
    *,
    recs_file: Path,
    written: Path | None = None,
    fields: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
) -> Run:
    """Store a scored run (created with :func:`harness.store.runs.create_run`): move the
    normalised lists ``written`` into ``recs_file`` and keep metrics, per-user values and the
    report, in one transaction. Returns the stored run."""
    from harness.store import runs as store

    if written is not None:
        written.replace(recs_file)
    evaluation = scored.evaluation
    store.finish_run(
        home,
        run_id,
        metrics=evaluation.metrics,
        per_user=evaluation.per_user,
        fields={
            **(fields or {}),
            "ended_at": datetime.now(),
            "recs_path": str(recs_file.relative_to(home)),
            "report": {
                "validation": scored.report,
                "notices": evaluation.notices,
                **(report or {}),
            },
        },
    )
    return store.get_run(home, run_id)


def ks_for(k: int) -> tuple[int, ...]:
    """The cut-offs a submission of top-``k`` lists is scored at: the defaults up to k, and k."""
    ks = tuple(x for x in DEFAULT_KS if x <= k) or (k,)
    return ks if k in ks or k < max(ks) else (*ks, k)


def score_external(
    home: Path,
    recs_path,
    dataset: str,
    split: str | None,
    name: str,
    ks=None,
    *,
    tags: list[str] | None = None,
    note: str | None = None,
):
    """``harness score --dataset``: score lists produced elsewhere against the prepared split's
    truth and store them as an external run (with ``tags`` and ``note``); returns the stored run."""
    from harness import __version__, labels
    from harness.config import runs_dir
    from harness.runner.pipeline import _categories, _environment, new_run_id
    from harness.store import runs as store
    from harness.store.splits import load_split

    tags, note = labels.check_tags(tags), labels.check_note(note)
    recs_path = Path(recs_path)
    prepared = load_split(home, dataset, split, parts=("train", "truth", "test_users", "items"))
    ks = tuple(ks) if ks else DEFAULT_KS
    run_id = new_run_id()
    recs_file = runs_dir(home) / f"{run_id}.parquet"
    written = recs_file.with_suffix(".parquet.tmp")
    test_users = prepared.part("test_users")
    try:
        scored = score_lists(
            recs_path,
            prepared.part("truth"),
            ks=ks,
            train=prepared.part("train").select(USER, ITEM),
            cold_users=test_users.filter(pl.col("cold")).get_column(USER),
            item_categories=_categories(prepared.items),
            users=test_users.get_column(USER),
            name=str(recs_path),
            against=f"the truth of {prepared.dataset}",
            write_to=written,
        )
    except BaseException:
        written.unlink(missing_ok=True)
        raise
    store.create_run(
        home,
        store.Run(
            run_id=run_id,
            recommender=name,
            k=max(ks),
            dataset=prepared.dataset,
            split=prepared.split,
            fingerprint=prepared.fingerprint,
            harness_version=__version__,
            started_at=datetime.now(),
            external=True,
            tags=tags,
            note=note,
            **_environment(),
        ),
    )
    try:
        return store_run(
            home,
            run_id,
            scored,
            recs_file=recs_file,
            written=written,
            report={"source": str(recs_path)},
        )
    except BaseException as exc:
        written.unlink(missing_ok=True)
        recs_file.unlink(missing_ok=True)
        store.mark_run(
            home,
            run_id,
            "aborted" if isinstance(exc, KeyboardInterrupt) else "failed",
            error=f"{type(exc).__name__}: {exc}",
        )
        raise


__all__ = [
    "ENGINES",
    "Scored",
    "ks_for",
    "score_external",
    "score_files",
    "score_lists",
    "store_run",
]
