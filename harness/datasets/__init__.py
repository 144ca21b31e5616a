"""Datasets: registry, sources, loaders, cleaning, splits; :func:`prepare` ties them together.

``prepare(name)`` reads the registry entry, gets the source (embedded, local path, or a
checksummed download), loads it into canonical frames, cleans them (positive filter, dedup,
minimum counts), splits them by the chosen protocol and stores train, truth, test users and
features in DuckDB in one transaction (:mod:`harness.store.splits`).

Fingerprint: sha256 over the source checksums (per file for embedded and local sources, the
archive's for downloads, none for synthetic data), the entry's configuration and the split's
protocol. A split prepared again from the same inputs gets the same fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import polars as pl

from harness.config import cache_dir
from harness.datasets.registry import EMBEDDED, get_entry, load_registry
from harness.errors import ConfigError, DataError, NotFoundError

__all__ = ["prepare", "load_registry", "get_entry", "load_frames", "source_root"]

U, I, T, W = "user_id", "item_id", "timestamp", "weight"


def _hash_files(root: Path) -> dict[str, str]:
    from harness.datasets.fetch import sha256_of

    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root) if p != root else p.name): sha256_of(p) for p in files}


def source_root(
    name: str, entry: dict, home: Path, progress: bool = False
) -> tuple[Path | None, dict]:
    """Where the source files are, and their checksums (for the fingerprint)."""
    src = entry.get("source", {})
    if entry["format"] == "synthetic":
        return None, {}
    if "embedded" in src:
        root = EMBEDDED / src["embedded"]
        if not root.resolve().is_relative_to(EMBEDDED.resolve()):  # the registry checks this too
            raise ConfigError(f"[{name}]: embedded data must be inside the package")
        if not root.is_dir():
            raise DataError(f"[{name}]: embedded data {src['embedded']!r} not found at {root}")
        return root, _hash_files(root)
    if "path" in src:
        root = Path(src["path"]).expanduser()
        if not root.exists():
            raise DataError(f"[{name}]: source path {root} does not exist")
        return root, _hash_files(root)
    from harness.datasets.fetch import fetch

    cache = cache_dir(home)
    target = cache / name
    if not target.resolve().is_relative_to(cache.resolve()):  # the registry checks names too
        raise ConfigError(f"[{name}]: dataset name would put its cache outside {cache}")
    root, digest = fetch(
        src["url"], src.get("sha256"), target, progress=progress, git_sha1=src.get("git_sha1")
    )
    return root, {src["url"]: digest}


def load_frames(name: str, entry: dict, root: Path | None):
    """Canonical (interactions, users, items) of an entry: weight and categories applied."""
    from harness.datasets.loaders import LOADERS

    inter, users, items = LOADERS[entry["format"]](root, entry)
    if entry.get("weight"):
        col = entry["weight"]
        if col not in inter.columns:
            raise ConfigError(
                f"[{name}] weight: unknown column {col!r} (columns: {', '.join(inter.columns)})"
            )
        inter = inter.with_columns(pl.col(col).cast(pl.Float32).alias(W))
    else:
        inter = inter.with_columns(pl.lit(1.0, pl.Float32).alias(W))
    if T not in inter.columns:
        inter = inter.with_columns(pl.lit(None, pl.Datetime("us")).alias(T))
    for col in (U, I):
        if inter[col].null_count():
            raise DataError(f"[{name}]: {inter[col].null_count()} interactions with null {col}")
    extras = [c for c in inter.columns if c not in (U, I, T, W)]
    inter = inter.select(U, I, T, W, *extras)
    if items is not None and entry.get("categories"):
        col = entry["categories"]
        if col not in items.columns:
            raise ConfigError(f"[{name}] categories: unknown item column {col!r}")
        cats = pl.col(col)
        if items[col].dtype == pl.Utf8:
            cats = (
                cats.str.split(entry.get("categories_sep", "|"))
                .list.eval(pl.element().str.strip_chars())
                .list.filter(pl.element() != "")
            )
        items = items.with_columns(cats.cast(pl.List(pl.Utf8)).alias("categories"))
    return inter, users, items


def fingerprint(entry: dict, checksums: dict, split_name: str) -> str:
    config = {
        k: v
        for k, v in entry.items()
        if k not in ("_registry", "description", "splits", "license", "default_split")
    }
    payload = {
        "checksums": checksums,
        "config": config,
        "split": split_name,
        "protocol": {k: v for k, v in entry["splits"][split_name].items() if k != "note"},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def prepare(
    name: str,
    *,
    home: Path,
    split: str | None = None,
    force: bool = False,
    registry_file: Path | None = None,
    progress: bool = False,
) -> dict:
    """Prepare (dataset, split) into the store unless it is there with the same fingerprint;
    return its metadata (:func:`harness.store.splits.split_meta`)."""
    from harness.datasets import split as protocols
    from harness.store.splits import PreparedSplit, save_split, split_meta

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    entry = get_entry(name, registry_file)
    default = entry["default_split"]  # computed once, by the registry
    sname = split or default
    if sname not in entry["splits"]:
        raise NotFoundError(
            f"dataset {name!r} has no split {sname!r} (splits: {', '.join(entry['splits'])})"
        )
    spec = entry["splits"][sname]
    started = time.perf_counter()
    root, checksums = source_root(name, entry, home, progress)
    fp = fingerprint(entry, checksums, sname)
    if not force:
        try:
            meta = split_meta(home, name, sname)
        except NotFoundError:
            meta = None
        if meta is not None and meta["fingerprint"] == fp:
            return {**meta, "unchanged": True}
    inter, users, items = load_frames(name, entry, root)
    inter, report = protocols.clean(inter, entry, name)
    train, test, cutoff = protocols.split(inter, spec, name, sname)
    truth, test_users = protocols.truth_of(train, test, spec, f"[{name}.splits.{sname}]")
    n_cold = int(test_users["cold"].sum())
    ts = inter[T]
    info = {
        "users": inter[U].n_unique(),
        "items": inter[I].n_unique(),
        "interactions": inter.height,
        "density": inter.height / max(1, inter[U].n_unique() * inter[I].n_unique()),
        "time_min": ts.min(),
        "time_max": ts.max(),
        "train_rows": train.height,
        "train_users": train[U].n_unique(),
        "train_items": train[I].n_unique(),
        "truth_rows": truth.height,
        "test_users": test_users.height,
        "warm_users": test_users.height - n_cold,
        "cold_users": n_cold,
        "is_default": sname == default,
        "cleaning": report,
        "source": entry.get("source", {}),
        "format": entry["format"],
    }
    protocol = dict(spec)
    protocol.setdefault("exclude_seen", True)
    prepared = PreparedSplit(
        dataset=name,
        split=sname,
        fingerprint=fp,
        protocol=protocol,
        cutoff=cutoff,
        train=train,
        truth=truth,
        test_users=test_users,
        users=users,
        items=items,
        info=info,
    )
    save_split(home, prepared)
    info["prepare_seconds"] = round(time.perf_counter() - started, 3)
    return {**split_meta(home, name, sname), "unchanged": False}
