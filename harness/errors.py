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
