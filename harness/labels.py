"""Tags and notes people attach to a run (``--tag``, ``--note``): the one place that says what
they may be. A tag is a short token to filter boards by (``harness leaderboard --tag X``); a note
is one line of free text shown with the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.errors import UsageError

TAG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,39}")
TAG_RULE = "a tag is 1-40 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
MAX_TAGS = 20
MAX_NOTE = 500


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:59] + "…")


def check_tags(tags: str | Iterable[str] | None) -> list[str]:
    """The tags, validated, each once, in the order given; UsageError (exit 2) naming the first
    bad one. A single string is one tag."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise UsageError(f"--tag {tag!r}: a tag is text, got {type(tag).__name__}")
        if not TAG_RE.fullmatch(tag):
            raise UsageError(f"--tag {_shown(tag)}: {TAG_RULE}")
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise UsageError(f"--tag: at most {MAX_TAGS} tags per run, got {len(out)}")
    return out


def check_note(note: str | None) -> str | None:
    """The note without surrounding spaces (None when empty); UsageError (exit 2) when it is
    longer than :data:`MAX_NOTE` characters or not one line of printable text."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise UsageError(f"--note: a note is text, got {type(note).__name__}")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise UsageError(f"--note is {len(note)} characters long; at most {MAX_NOTE}")
    bad = next((c for c in note if not c.isprintable()), None)
    if bad is not None:
        raise UsageError(
            f"--note: a note is one line of printable text (found {bad!r} at character "
            f"{note.index(bad) + 1})"
        )
    return note or None
