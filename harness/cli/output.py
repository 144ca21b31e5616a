"""Output helpers shared by commands: ``--json`` printing and the Rich console."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def escape(text: str) -> str:
    """``text`` with control characters (newlines, escape sequences) written as Python escapes,
    so that a file name, an id or a plugin's message cannot forge or break terminal output."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def text(value: Any):
    """A Rich cell or line of text from outside (a plugin, a file, the command line): control
    characters escaped, and never read as Rich markup (``[link=...]`` stays literal)."""
    from rich.text import Text

    return Text(escape(value))


def block(value: str):
    """Like :func:`text` for several lines (a plugin's stderr): newlines and tabs kept."""
    from rich.text import Text

    return Text("\n".join(escape(line.replace("\t", "    ")) for line in str(value).splitlines()))


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(_clean(obj), indent=2, default=_default))


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)
