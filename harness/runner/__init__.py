"""Running a recommender: :mod:`.pipeline` (load, handoff, validate, score, store),
:mod:`.process` (the worker process under its limits) and :mod:`.worker` (what runs inside it).

The public names stay importable from here.
"""

from harness.runner.pipeline import new_run_id, submit
from harness.runner.process import allowed_cores, parse_size
from harness.scoring import score_external

__all__ = ["allowed_cores", "new_run_id", "parse_size", "score_external", "submit"]
