"""The dataset registry: the shipped ``datasets.toml`` plus a user's own file.

A user's file (``--datasets FILE`` or ``$HARNESS_DATASETS``) adds entries or replaces shipped
ones of the same name as a whole. Every entry is checked here, so that a typo fails before any
data is read, with the file and key in the message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.config import ENV_DATASETS
from harness.errors import ConfigError, NotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = Path(__file__).with_name("datasets.toml")
EMBEDDED = Path(__file__).with_name("embedded")

FORMATS = {"movielens-latest", "movielens-100k", "movielens-1m", "kion", "lastfm", "csv",
           "parquet", "synthetic"}
ENTRY_KEYS = {"format", "source", "description", "license", "weight", "positive", "min_user",
              "min_item", "min_count_mode", "dedup", "categories", "categories_sep", "columns",
              "files", "separator", "timestamp_unit", "params", "splits", "default_split"}
SOURCE_KEYS = {"url", "sha256", "git_sha1", "path", "embedded"}
PROTOCOLS = {"temporal": {"days", "quantile"}, "leave-last": {"n"},
             "ratio": {"test_ratio"}, "random": {"test_ratio", "seed"}}
SPLIT_KEYS = {"protocol", "exclude_seen", "note"}  # note: why this split (not fingerprinted)


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: dataset registry not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    base = path.parent
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        check_entry(name, entry, path)
        src = entry.get("source", {})
        if "path" in src and not Path(src["path"]).expanduser().is_absolute():
            src["path"] = str(base / src["path"])
        entry["_registry"] = str(path)
    return data


def check_entry(name: str, entry: dict, path: Path | str) -> None:
    where = f"{path}: [{name}]"
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    fmt = entry.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"{where}: unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
    src = entry.get("source", {})
    if not isinstance(src, dict) or set(src) - SOURCE_KEYS:
        raise ConfigError(f"{where}: source must be a table with keys {', '.join(sorted(SOURCE_KEYS))}")
    if fmt != "synthetic" and not ({"url", "path", "embedded"} & set(src)):
        raise ConfigError(f"{where}: source needs url, path or embedded")
    if entry.get("min_count_mode", "once") not in ("once", "iterate"):
        raise ConfigError(f"{where}: min_count_mode must be 'once' or 'iterate'")
    if entry.get("dedup", "last") not in ("first", "last", "none"):
        raise ConfigError(f"{where}: dedup must be 'first', 'last' or 'none'")
    splits = entry.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise ConfigError(f"{where}: needs at least one [{name}.splits.NAME] table")
    for sname, spec in splits.items():
        proto = spec.get("protocol") if isinstance(spec, dict) else None
        if proto not in PROTOCOLS:
            raise ConfigError(f"{where}.splits.{sname}: unknown protocol {proto!r} "
                              f"(known: {', '.join(PROTOCOLS)})")
        bad = set(spec) - SPLIT_KEYS - PROTOCOLS[proto]
        if bad:
            raise ConfigError(f"{where}.splits.{sname}: unknown key(s) {', '.join(sorted(bad))}")
        if proto == "temporal" and len({"days", "quantile"} & set(spec)) != 1:
            raise ConfigError(f"{where}.splits.{sname}: temporal needs exactly one of days, quantile")
    default = entry.get("default_split", next(iter(splits)))
    if default not in splits:
        raise ConfigError(f"{where}: default_split {default!r} is not one of its splits")


def load_registry(registry_file: Path | None = None) -> dict[str, dict]:
    """Shipped entries, overridden and extended by the user's file (argument, else env var)."""
    entries = _read(SHIPPED)
    user = registry_file or (Path(os.environ[ENV_DATASETS]) if os.environ.get(ENV_DATASETS) else None)
    if user is not None:
        entries.update(_read(Path(user)))
    return entries


def get_entry(name: str, registry_file: Path | None = None) -> dict:
    entries = load_registry(registry_file)
    if name not in entries:
        raise NotFoundError(f"unknown dataset {name!r} (known: {', '.join(sorted(entries))}); "
                            "add it to your registry file (--datasets FILE)")
    return entries[name]
