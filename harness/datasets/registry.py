"""The dataset registry: the shipped ``datasets.toml`` plus a user's own file.

A user's file (``--datasets FILE`` or ``$HARNESS_DATASETS``) adds entries or replaces shipped
ones of the same name as a whole. Every entry is checked here, so that a typo fails before any
data is read, with the file and key in the message.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticError

from harness.config import ENV_DATASETS
from harness.errors import ConfigError, NotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = Path(__file__).with_name("datasets.toml")
EMBEDDED = Path(__file__).with_name("embedded")
# An entry's name names its cache folder: no separators, no leading dot, no "..".
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

Format = Literal[
    "movielens-latest",
    "movielens-100k",
    "movielens-1m",
    "kion",
    "lastfm",
    "csv",
    "parquet",
    "synthetic",
]
FORMATS = set(Format.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    """TOML has types: a value of the wrong type is an error, never coerced ("2" is no integer)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _inside(value: str, what: str) -> str:
    """A relative path that cannot leave its base folder."""
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not value.strip():
        raise ValueError(f"{what} must be a relative path inside its folder, without '..'")
    return value


class Source(_Strict):
    url: str | None = None
    sha256: str | None = None
    git_sha1: str | None = None
    path: str | None = None
    embedded: str | None = None

    @field_validator("embedded")
    @classmethod
    def _embedded_inside_package(cls, value: str) -> str:
        _inside(value, "embedded")
        if not (EMBEDDED / value).resolve().is_relative_to(EMBEDDED.resolve()):
            raise ValueError("embedded must name a folder of the package's embedded data")
        return value


class Files(_Strict):
    interactions: str | None = None
    users: str | None = None
    items: str | None = None

    @field_validator("interactions", "users", "items")
    @classmethod
    def _relative(cls, value: str) -> str:
        return _inside(value, "a file")


class ColumnMap(_Strict):
    user_id: str | None = None
    item_id: str | None = None
    timestamp: str | None = None


class SyntheticParams(_Strict):
    n_users: PositiveInt | None = None
    n_items: PositiveInt | None = None
    n_interactions: PositiveInt | None = None
    n_tastes: PositiveInt | None = None
    taste_strength: float | None = None
    popularity_exponent: float | None = None
    days: PositiveInt | None = None
    start: str | None = None
    seed: int | None = None


class _Split(_Strict):
    exclude_seen: bool = True
    note: str | None = None  # why this split (shown by data info, not fingerprinted)


Ratio = Annotated[float, Field(gt=0, lt=1)]


class Temporal(_Split):
    protocol: Literal["temporal"]
    days: PositiveInt | None = None
    quantile: Ratio | None = None

    @model_validator(mode="after")
    def _one_cut(self):
        if (self.days is None) == (self.quantile is None):
            raise ValueError("temporal needs exactly one of days, quantile")
        return self


class LeaveLast(_Split):
    protocol: Literal["leave-last"]
    n: PositiveInt = 1


class TemporalRatio(_Split):
    protocol: Literal["ratio"]
    test_ratio: Ratio = 0.2


class RandomSplit(_Split):
    protocol: Literal["random"]
    test_ratio: Ratio = 0.2
    seed: int = 0


Split = Annotated[
    Temporal | LeaveLast | TemporalRatio | RandomSplit, Field(discriminator="protocol")
]
PROTOCOLS = {
    "temporal": Temporal,
    "leave-last": LeaveLast,
    "ratio": TemporalRatio,
    "random": RandomSplit,
}


class Entry(_Strict):
    """One dataset of the registry (docs/datasets.md describes every key)."""

    format: Format
    source: Source = Source()
    description: str | None = None
    license: str | None = None
    weight: str | None = None
    positive: str | None = None
    min_user: NonNegativeInt = 0
    min_item: NonNegativeInt = 0
    min_count_mode: Literal["once", "iterate"] = "once"
    dedup: Literal["first", "last", "none"] = "last"
    categories: str | None = None
    categories_sep: str = "|"
    columns: ColumnMap = ColumnMap()
    files: Files = Files()
    separator: str = ","
    timestamp_unit: Literal["s", "ms", "us", "ns"] = "s"
    params: SyntheticParams = SyntheticParams()
    splits: dict[str, Split]
    default_split: str | None = None

    @model_validator(mode="after")
    def _consistent(self):
        src = self.source
        if self.format != "synthetic" and not (src.url or src.path or src.embedded):
            raise ValueError("source needs url, path or embedded")
        if not self.splits:
            raise ValueError("needs at least one [NAME.splits.SPLIT] table")
        if self.default_split is not None and self.default_split not in self.splits:
            raise ValueError(f"default_split {self.default_split!r} is not one of its splits")
        return self

    @property
    def default(self) -> str:
        """The split used when none is named: ``default_split``, else the first declared."""
        return self.default_split or next(iter(self.splits))


_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``key: what is wrong (got value)``."""
    loc = [str(p) for p in error["loc"]]
    if len(loc) > 2 and loc[0] == "splits" and loc[2] in PROTOCOLS:
        del loc[2]  # the union's tag, not a key the user wrote
    key = ".".join(loc)
    kind, value = error["type"], error.get("input")
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
    if kind == "extra_forbidden":
        return f"unknown key(s) {key}"
    if kind == "union_tag_invalid":
        return f"{key}: unknown protocol {error['ctx']['tag']!r} (known: {', '.join(PROTOCOLS)})"
    if kind == "union_tag_not_found":
        return f"{key}: needs a protocol ({', '.join(PROTOCOLS)})"
    if kind == "literal_error" and key == "format":
        return f"unknown format {value!r} (known: {', '.join(sorted(FORMATS))})"
    if kind == "missing":
        return f"{key}: missing"
    text = _EXPECTED.get(kind) or error["msg"].removeprefix("Value error, ")
    if kind == "value_error" or not loc:
        return f"{key + ': ' if key else ''}{text}"
    return f"{key}: {text} (got {shown})"


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


def check_entry(name: str, entry: dict, path: Path | str) -> Entry:
    """Validate one entry (once, at load); ConfigError naming file, dataset, key and type.

    The entry dict keeps what the file says (its fingerprint hashes exactly that) and gains the
    computed ``default_split``."""
    where = f"{path}: [{name}]"
    if not NAME.match(name) or ".." in name:
        raise ConfigError(
            f"{where}: dataset name {name!r} must be letters, digits, '.', '_', '+' "
            "or '-' (it names a cache folder), not starting with '.'"
        )
    try:
        model = Entry.model_validate(entry)
    except PydanticError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # typos first
        raise ConfigError(f"{where}: {_message(errors[0])}") from None
    entry["default_split"] = model.default
    return model


def load_registry(registry_file: Path | None = None) -> dict[str, dict]:
    """Shipped entries, overridden and extended by the user's file (argument, else env var)."""
    entries = _read(SHIPPED)
    user = registry_file or (
        Path(os.environ[ENV_DATASETS]) if os.environ.get(ENV_DATASETS) else None
    )
    if user is not None:
        entries.update(_read(Path(user)))
    return entries


def get_entry(name: str, registry_file: Path | None = None) -> dict:
    entries = load_registry(registry_file)
    if name not in entries:
        raise NotFoundError(unknown_dataset(name, entries))
    return entries[name]


def unknown_dataset(name: str, known) -> str:
    """ "unknown dataset" with the closest registered names, for every command that takes one."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else f"known: {', '.join(sorted(known))}"
    )
    return f"unknown dataset {name!r}: {hint} (`harness data list` shows all; add your own with --datasets FILE)"
