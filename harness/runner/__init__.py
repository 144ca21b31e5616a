"""Running a recommender: :mod:`.pipeline` (load, handoff, validate, score, store),
:mod:`.process` (the worker process under its limits) and :mod:`.worker` (what runs inside it).

The public names stay importable from here. They are loaded on first use: the worker process
(``python -m harness.runner.worker``) imports this package first and needs none of them (the
pipeline would cost it the store, DuckDB and the scoring code at every start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from harness.runner.pipeline import new_run_id, submit
    from harness.runner.process import allowed_cores, parse_size
    from harness.scoring import score_external

__all__ = ["allowed_cores", "new_run_id", "parse_size", "score_external", "submit"]
_HOMES = {
    "new_run_id": "harness.runner.pipeline",
    "submit": "harness.runner.pipeline",
    "allowed_cores": "harness.runner.process",
    "parse_size": "harness.runner.process",
    "score_external": "harness.scoring",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
