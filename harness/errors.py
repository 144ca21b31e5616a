"""One error hierarchy. Every bad input raises a subclass of :class:`HarnessError` whose message
names the file, row, key, plugin or parameter and, where useful, the next step. The CLI turns these
into a one-line ``error: ...`` and a non-zero exit; any other exception is a bug and keeps its
traceback."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error caused by input, configuration or environment."""

    exit_code = 1


class ConfigError(HarnessError):
    """A malformed dataset registry, an unknown key, format, split or parameter."""


class UsageError(ConfigError):
    """A value outside what its option allows: a ``-p`` parameter out of the bounds the model
    declares, a malformed ``--tag`` or ``--note``. Exit code 2, like Click's usage errors."""

    exit_code = 2


class DataError(HarnessError):
    """An input file that is missing, unreadable or not of the expected layout."""


class FetchError(HarnessError):
    """A download or unpack failed, or a checksum did not match."""


class NotFoundError(HarnessError):
    """A dataset, split, run or recommender that does not exist (or is not prepared yet)."""


class PluginError(HarnessError):
    """A recommender failed to import, to build from its parameters, or broke the contract."""


class ValidationError(HarnessError):
    """A recommendation or truth table that breaks the file contract (duplicates, nulls, NaN...)."""


class RunError(HarnessError):
    """A submission whose worker crashed, timed out or ran out of memory."""


def without_content(message: str) -> str:
    """The first line of a reader's error message with quoted text (values read from the file)
    replaced by "…": an error names the file and the problem, never what the file contains."""
    import re

    first = (message.strip().splitlines() or [""])[0]
    return re.sub(r"`[^`]*`|\"[^\"]*\"|'[^']*'", "…", first)[:200]


def found_columns(columns) -> str:
    """ "found: a, b" when the header looks like column names, else only how many there are (a
    file that is not a table, such as /etc/passwd, has its first line as its "header")."""
    import re

    names = list(columns)
    if names and len(names) <= 30 and all(re.fullmatch(r"[\w .#%()-]{1,64}", n) for n in names):
        return f"found: {', '.join(names)}"
    return f"found {len(names)} column(s) that do not look like names"


class HarnessWarning(UserWarning):
    """Input that is accepted but probably not what was meant (an implausible timestamp unit).
    The CLI prints it as one ``warning: ...`` line."""


class StoreError(HarnessError):
    """The database file is damaged, truncated or not a harness database."""


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, or a polars/DuckDB error wrapping one) means the disk is full."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left on device" in text or "os error 28" in text or "disk quota" in text
