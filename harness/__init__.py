"""harness: an offline leaderboard for recommender systems.

From Python (docs/python-api.md): :func:`prepare`, :func:`score`, :func:`submit`,
:func:`leaderboard`, :func:`compare` and :func:`runs`, the same calls the ``harness`` command
makes. The plugin contract lives in :mod:`harness.api`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "compare", "leaderboard", "prepare", "runs", "score", "submit"]

if TYPE_CHECKING:
    from harness.python_api import compare, leaderboard, prepare, runs, score, submit


def __getattr__(name: str) -> Any:
    # imported on first use, so that the command line and the worker start without polars & co.
    if name in __all__:
        from harness import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
