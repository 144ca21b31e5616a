"""Format loaders: each turns source files into canonical frames.

A loader returns ``(interactions, users, items)``: interactions with ``user_id``, ``item_id``,
``timestamp`` (Datetime, or absent when the data has no time) and the dataset's own extra
columns (``rating``, ``watched_pct`` ...); users and items keyed by ``user_id``/``item_id`` or
None. Files are found by name anywhere under the source directory (archives unpack into a
sub-folder of varying name).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import overload

import polars as pl

from harness.errors import ConfigError, DataError, found_columns, without_content

Frames = tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame | None]
# format -> loader(root, entry); root is None for a generated dataset (no source files)
LOADERS: dict[str, Callable[[Path | None, dict], Frames]] = {}

ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def loader(name: str):
    def register(fn):
        LOADERS[name] = fn
        return fn

    return register


@overload
def find(root: Path, *names: str) -> Path: ...
@overload
def find(root: Path, *names: str, required: bool) -> Path | None: ...
def find(root: Path, *names: str, required: bool = True) -> Path | None:
    """The first of ``names`` found at or under ``root``."""
    if root.is_file():
        return root if root.name in names or not required else root
    for name in names:
        if (root / name).exists():
            return root / name
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    if required:
        raise DataError(f"{root}: file {' or '.join(names)} not found")
    return None


def _read(path: Path, **kwargs) -> pl.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, **kwargs)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({without_content(str(exc))})") from None


def _need(frame: pl.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} ({found_columns(frame.columns)})"
        )


def _unix(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col).cast(pl.Int64), time_unit="s").cast(pl.Datetime("us"))


@loader("movielens-latest")
def movielens_latest(root: Path, cfg: dict) -> Frames:
    path = find(root, "ratings.parquet", "ratings.csv")
    ratings = _read(path)
    _need(ratings, ["userId", "movieId", "rating", "timestamp"], path)
    inter = ratings.select(
        pl.col("userId").cast(pl.Int64).alias("user_id"),
        pl.col("movieId").cast(pl.Int64).alias("item_id"),
        _unix("timestamp").alias("timestamp"),
        pl.col("rating").cast(pl.Float32),
    )
    items = None
    mpath = find(root, "movies.parquet", "movies.csv", required=False)
    if mpath:
        movies = _read(mpath)
        _need(movies, ["movieId", "title", "genres"], mpath)
        items = movies.select(
            pl.col("movieId").cast(pl.Int64).alias("item_id"),
            "title",
            pl.col("genres")
            .str.split("|")
            .list.filter(pl.element() != "(no genres listed)")
            .alias("genres"),
        )
    return inter, None, items


@loader("movielens-100k")
def movielens_100k(root: Path, cfg: dict) -> Frames:
    path = find(root, "u.data")
    inter = _read(
        path,
        separator="\t",
        has_header=False,
        new_columns=["user_id", "item_id", "rating", "timestamp"],
    )
    if inter.width != 4:
        raise DataError(f"{path}: expected 4 tab-separated columns, found {inter.width}")
    inter = inter.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        _unix("timestamp").alias("timestamp"),
        pl.col("rating").cast(pl.Float32),
    )
    items = users = None
    ipath = find(root, "u.item", required=False)
    if ipath:
        raw = ipath.read_bytes().decode("latin-1")
        parts = _lines(raw).select(pl.col("line").str.split("|"))
        flags = pl.concat_list(
            [
                pl.when(pl.col("line").list.get(5 + i) == "1").then(pl.lit(g))
                for i, g in enumerate(ML100K_GENRES)
            ]
        )
        items = parts.select(
            pl.col("line").list.get(0).cast(pl.Int64).alias("item_id"),
            pl.col("line").list.get(1).alias("title"),
            pl.col("line").list.get(2).alias("release_date"),
            flags.list.drop_nulls().alias("genres"),
        )
    upath = find(root, "u.user", required=False)
    if upath:
        users = _read(
            upath,
            separator="|",
            has_header=False,
            new_columns=["user_id", "age", "gender", "occupation", "zip_code"],
            schema_overrides={"zip_code": pl.Utf8},
        )
    return inter, users, items


def _lines(text: str) -> pl.DataFrame:
    """Non-empty lines of a text as a one-column frame ``line``."""
    return pl.DataFrame({"line": text.splitlines()}).filter(pl.col("line") != "")


def _double_colon(path: Path, names: list[str]) -> pl.DataFrame:
    raw = path.read_bytes().decode("latin-1")
    parts = _lines(raw).select(pl.col("line").str.split("::"))
    return parts.select(pl.col("line").list.get(i).alias(n) for i, n in enumerate(names))


@loader("movielens-1m")
def movielens_1m(root: Path, cfg: dict) -> Frames:
    path = find(root, "ratings.dat")
    r = _double_colon(path, ["user_id", "item_id", "rating", "timestamp"])
    inter = r.select(
        pl.col("user_id").cast(pl.Int64),
        pl.col("item_id").cast(pl.Int64),
        _unix("timestamp").alias("timestamp"),
        pl.col("rating").cast(pl.Float32),
    )
    items = users = None
    if mpath := find(root, "movies.dat", required=False):
        items = _double_colon(mpath, ["item_id", "title", "genres"]).with_columns(
            pl.col("item_id").cast(pl.Int64), pl.col("genres").str.split("|")
        )
    if upath := find(root, "users.dat", required=False):
        users = _double_colon(
            upath, ["user_id", "gender", "age", "occupation", "zip_code"]
        ).with_columns(pl.col("user_id").cast(pl.Int64))
    return inter, users, items


@loader("kion")
def kion(root: Path, cfg: dict) -> Frames:
    path = find(root, "interactions.csv")
    raw = _read(path, try_parse_dates=False)
    _need(raw, ["user_id", "item_id", "last_watch_dt", "total_dur", "watched_pct"], path)
    inter = raw.with_columns(
        pl.col("last_watch_dt").str.to_date().cast(pl.Datetime("us")).alias("timestamp")
    ).drop("last_watch_dt")
    users = items = None
    if upath := find(root, "users.csv", required=False):
        users = _read(upath)
    if ipath := find(root, "items.csv", required=False):
        items = _read(ipath, infer_schema_length=0).with_columns(pl.col("item_id").cast(pl.Int64))
    return inter, users, items


@loader("lastfm")
def lastfm(root: Path, cfg: dict) -> Frames:
    """Last.fm HetRec 2011: listening counts (weight), no timestamps."""
    path = find(root, "user_artists.dat")
    raw = _read(path, separator="\t")
    _need(raw, ["userID", "artistID", "weight"], path)
    inter = raw.select(
        pl.col("userID").cast(pl.Int64).alias("user_id"),
        pl.col("artistID").cast(pl.Int64).alias("item_id"),
        pl.col("weight").cast(pl.Float64).alias("plays"),
    )
    items = None
    if apath := find(root, "artists.dat", required=False):
        items = _read(apath, separator="\t", quote_char=None).select(
            pl.col("id").cast(pl.Int64).alias("item_id"), "name"
        )
    return inter, None, items


def _mapped(path: Path, cfg: dict, fmt: str) -> pl.DataFrame:
    frame = _read(path, **({"separator": cfg.get("separator", ",")} if fmt == "csv" else {}))
    mapping = cfg.get("columns", {})
    unknown = set(mapping) - {"user_id", "item_id", "timestamp"}
    if unknown:
        raise ConfigError(
            f"columns: unknown key(s) {', '.join(sorted(unknown))} "
            f"(allowed: user_id, item_id, timestamp)"
        )
    rename = {src: dst for dst, src in mapping.items()}
    _need(frame, list(rename), path)
    return frame.rename(rename)


def _generic(root: Path, cfg: dict, fmt: str) -> Frames:
    files = cfg.get("files", {})
    ipath = root / files["interactions"] if "interactions" in files else root
    inter = _mapped(ipath, cfg, fmt)
    _need(inter, ["user_id", "item_id"], ipath)
    if "timestamp" in inter.columns:
        ts = inter["timestamp"]
        unit = cfg.get("timestamp_unit", "s")
        if ts.dtype.is_numeric():
            _check_epochs(ts, unit, ipath)
            inter = inter.with_columns(
                pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit=unit).cast(
                    pl.Datetime("us")
                )
            )
        elif ts.dtype == pl.Utf8:
            try:
                inter = inter.with_columns(
                    pl.col("timestamp").str.to_datetime().cast(pl.Datetime("us"))
                )
            except pl.exceptions.PolarsError as exc:
                raise DataError(
                    f"{ipath}: cannot parse column timestamp as time ({without_content(str(exc))})"
                ) from None
        else:
            inter = inter.with_columns(pl.col("timestamp").cast(pl.Datetime("us")))
    users = items = None
    if "users" in files:
        users = _read(root / files["users"])
        _need(users, ["user_id"], root / files["users"])
    if "items" in files:
        items = _read(root / files["items"])
        _need(items, ["item_id"], root / files["items"])
    return inter, users, items


# Epoch seconds of 1900-01-01 and 2200-01-01: numeric timestamps outside this window in their
# unit are an error (they would overflow or land in year 65466); a log that only another unit
# puts inside 1980-2100 gets a warning that timestamp_unit is probably wrong.
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_VALID = (-2_208_988_800, 7_258_118_400)
_PLAUSIBLE = (315_532_800, 4_102_444_800)


def _check_epochs(ts: pl.Series, unit: str, path: Path) -> None:
    import warnings
    from datetime import datetime, timezone

    from harness.errors import HarnessWarning
    from harness.frames import as_float

    ts = ts.cast(pl.Float64)
    per = _PER_SECOND[unit]
    outside = ~ts.is_between(_VALID[0] * per, _VALID[1] * per) & ts.is_not_null()
    if outside.any():
        row = int(outside.arg_true()[0])
        raise DataError(
            f"{path}: timestamp {ts[row]:.0f} at row {row + 1} is outside the years "
            f"1900-2200 as timestamp_unit {unit!r}: check the unit (s, ms, us, ns)"
        )
    if ts.null_count() == ts.len():
        return
    lo, hi = as_float(ts.min()), as_float(ts.max())

    def plausible(u: str) -> bool:
        return _PLAUSIBLE[0] <= lo / _PER_SECOND[u] and hi / _PER_SECOND[u] <= _PLAUSIBLE[1]

    if not plausible(unit):
        better = [u for u in _PER_SECOND if u != unit and plausible(u)]
        if better:
            when = [
                datetime.fromtimestamp(v / per, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                for v in (lo, hi)
            ]
            warnings.warn(
                f"{path}: as timestamp_unit {unit!r} the log spans {when[0]} to {when[1]};"
                f" as {better[0]!r} it would fall in 1980-2100: check timestamp_unit",
                HarnessWarning,
                stacklevel=2,
            )


@loader("csv")
def csv(root: Path, cfg: dict) -> Frames:
    return _generic(root, cfg, "csv")


@loader("parquet")
def parquet(root: Path, cfg: dict) -> Frames:
    return _generic(root, cfg, "parquet")


@loader("synthetic")
def synthetic(root: Path | None, cfg: dict) -> Frames:
    from harness.datasets.synthetic import generate

    inter, users, items = generate(**cfg.get("params", {}))
    inter = inter.with_columns(
        pl.col("last_watch_dt").cast(pl.Datetime("us")).alias("timestamp")
    ).drop("last_watch_dt")
    return inter, users, items
